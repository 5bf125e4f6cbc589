//! librdkafka's mock cluster hosted in the harness process. Driver processes reach it
//! over loopback TCP like any broker.

use std::ffi::{CStr, CString};
use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use rdkafka_sys as rdsys;

use super::{Cluster, ClusterOptions, Unsupported};

pub struct MockCluster {
    raw: *mut rdsys::rd_kafka_mock_cluster_t,
    bootstrap: String,
    listeners: Vec<(i32, SocketAddr)>,
    replication: i32,
    // The mock cluster borrows this client's handle; it must outlive `raw`.
    _owner: BaseProducer,
}

// The mock cluster runs on its own thread; every rd_kafka_mock_* call hands an operation
// to that thread, so the handle may be used from any thread.
unsafe impl Send for MockCluster {}
unsafe impl Sync for MockCluster {}

impl MockCluster {
    pub fn start(opts: &ClusterOptions) -> Result<Self> {
        let owner: BaseProducer = ClientConfig::new()
            .set("log_level", "3")
            .create()
            .context("cannot create the client that hosts the mock cluster")?;
        let raw =
            unsafe { rdsys::rd_kafka_mock_cluster_new(owner.client().native_ptr(), opts.brokers) };
        if raw.is_null() {
            bail!(
                "librdkafka could not start a mock cluster of {} brokers",
                opts.brokers
            );
        }
        unsafe {
            rdsys::rd_kafka_mock_group_initial_rebalance_delay_ms(
                raw,
                opts.initial_rebalance_delay_ms,
            );
            rdsys::rd_kafka_mock_set_group_consumer_session_timeout_ms(
                raw,
                opts.consumer_session_timeout_ms,
            );
            rdsys::rd_kafka_mock_set_group_consumer_heartbeat_interval_ms(
                raw,
                opts.consumer_heartbeat_interval_ms,
            );
        }
        let bootstrap = unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(raw)) }
            .to_string_lossy()
            .into_owned();
        // Brokers are numbered from 1, listed in that order.
        let listeners = bootstrap
            .split(',')
            .zip(1..)
            .map(|(addr, id)| {
                addr.parse()
                    .map(|a| (id, a))
                    .with_context(|| format!("mock broker address {addr}"))
            })
            .collect::<Result<Vec<_>>>()?;
        tracing::info!(%bootstrap, brokers = opts.brokers, "mock cluster up");
        Ok(Self {
            raw,
            bootstrap,
            listeners,
            replication: opts.brokers.min(3),
            _owner: owner,
        })
    }
}

/// How long the proxy holds a group leader's SyncGroup on the mock (see
/// `compat_rules`).
const LEADER_SYNC_DELAY_MS: u64 = 300;

impl Cluster for MockCluster {
    fn name(&self) -> &str {
        "mock"
    }

    fn needs_response_fixes(&self) -> bool {
        true
    }

    /// The mock ends a SyncGroup round as soon as the leader's SyncGroup arrives and
    /// answers a follower's that comes after it with INVALID_REQUEST, where Kafka hands
    /// the follower its assignment (librdkafka 2.12.1, rdkafka_mock_cgrp.c). librdkafka's
    /// followers are quick enough; Sarama's, aiokafka's and the Java client's often are
    /// not, and their groups never settle. Holding the leader's SyncGroup (the one that
    /// carries assignments) lets the followers' arrive first, as Kafka would not need.
    fn compat_rules(&self) -> Vec<crate::proxy::Rule> {
        use crate::proxy::{api, Rule};
        vec![Rule::latency(LEADER_SYNC_DELAY_MS, 0)
            .api_key(api::SYNC_GROUP)
            .leader_sync()]
    }

    fn bootstrap_servers(&self) -> String {
        self.bootstrap.clone()
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let name = CString::new(topic)?;
        let err = unsafe {
            rdsys::rd_kafka_mock_topic_create(self.raw, name.as_ptr(), partitions, self.replication)
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            bail!("mock cluster refused to create topic {topic}: {err:?}");
        }
        Ok(())
    }

    fn listeners(&self) -> Vec<(i32, SocketAddr)> {
        self.listeners.clone()
    }

    fn can_advertise(&self) -> bool {
        true
    }

    fn advertise(&self, broker: i32, addr: SocketAddr) -> Result<()> {
        let host = CString::new(addr.ip().to_string())?;
        // Only metadata changes: the mock keeps listening where it listened.
        unsafe {
            rdsys::rd_kafka_mock_broker_set_host_port(
                self.raw,
                broker,
                host.as_ptr(),
                addr.port().into(),
            )
        };
        Ok(())
    }

    fn add_partitions(&self, topic: &str, _partitions: i32) -> Result<(), Unsupported> {
        Err(Unsupported(format!(
            "the mock cluster has no CreatePartitions handler (librdkafka 2.12.1), so {topic} cannot grow"
        )))
    }

    fn broker_down(&self, broker: i32) -> Result<(), Unsupported> {
        let err = unsafe { rdsys::rd_kafka_mock_broker_set_down(self.raw, broker) };
        self.check(&format!("take broker {broker} down"), err)
    }

    fn broker_up(&self, broker: i32) -> Result<(), Unsupported> {
        let err = unsafe { rdsys::rd_kafka_mock_broker_set_up(self.raw, broker) };
        self.check(&format!("bring broker {broker} up"), err)
    }

    fn move_coordinator(&self, group: &str, broker: i32) -> Result<(), Unsupported> {
        let key = CString::new(group).map_err(|e| Unsupported(e.to_string()))?;
        let err = unsafe {
            rdsys::rd_kafka_mock_coordinator_set(self.raw, c"group".as_ptr(), key.as_ptr(), broker)
        };
        self.check(
            &format!("move the coordinator of {group} to broker {broker}"),
            err,
        )
    }
}

impl MockCluster {
    fn check(&self, what: &str, err: rdsys::rd_kafka_resp_err_t) -> Result<(), Unsupported> {
        if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(Unsupported(format!(
                "mock cluster refused to {what}: {err:?}"
            )))
        }
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        unsafe { rdsys::rd_kafka_mock_cluster_destroy(self.raw) };
    }
}
