//! Broker images built on this machine, with no registry: `harness images build tansu`
//! runs the scripts under fixtures/images/ (debootstrap a Debian base, `docker import`
//! it, then a legacy `docker build` that adds the host's tansu binary). The scripts are
//! compiled in, so the command works from any directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cluster::{tansu_binary, Preset};

const BASE_SCRIPT: &str = include_str!("../../../fixtures/images/base/build.sh");
const TANSU_SCRIPT: &str = include_str!("../../../fixtures/images/tansu/build.sh");
const TANSU_DOCKERFILE: &str = include_str!("../../../fixtures/images/tansu/Dockerfile");

/// Images `harness images build` can make.
pub const BUILDABLE: &[&str] = &["tansu"];

/// Builds the image of preset `name` (skipped by the scripts when it is up to date,
/// unless `force`). Progress goes to stderr.
pub fn build(name: &str, force: bool) -> Result<()> {
    if !BUILDABLE.contains(&name) {
        let preset = Preset::named(name);
        match preset {
            Some(p) => bail!(
                "the {name} image ({}) comes from a registry (`docker pull {}`); only {} can be built here",
                p.image,
                p.image,
                BUILDABLE.join(", ")
            ),
            None => bail!(
                "no image named '{name}': buildable images are {}",
                BUILDABLE.join(", ")
            ),
        }
    }
    let binary = tansu_binary()?;
    let dir = std::env::temp_dir().join(format!("harness-images-{}", std::process::id()));
    let result = write_scripts(&dir).and_then(|()| {
        let script = dir.join("tansu/build.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg(&binary)
            .env("FORCE", if force { "1" } else { "0" })
            .status()
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !status.success() {
            bail!("building the tansu image failed ({status}); its output is above");
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The scripts in their fixtures/images/ layout (tansu/build.sh calls ../base/build.sh).
fn write_scripts(dir: &Path) -> Result<()> {
    for (path, text) in [
        ("base/build.sh", BASE_SCRIPT),
        ("tansu/build.sh", TANSU_SCRIPT),
        ("tansu/Dockerfile", TANSU_DOCKERFILE),
    ] {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().expect("a script's directory"))?;
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
