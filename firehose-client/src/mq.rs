//! The collector side of MQ mode: consume a queue bound to one of the distributor's
//! exchanges, verify every message's distributor signature, hand out typed records, and ack
//! only after the handler succeeded (nack and requeue on failure, like relayer-collector).
//!
//! ```no_run
//! # async fn demo(key: firehose_core::crypto::PublicKey) -> Result<(), firehose_client::mq::ConsumerError> {
//! use firehose_client::mq::MqConsumer;
//!
//! let mut c = MqConsumer::connect("amqp://guest:guest@127.0.0.1:5672/%2f", "collector1.receipts", 10, key).await?;
//! while let Some(d) = c.next().await {
//!     let d = d?;
//!     println!("{} {}", d.record.record.data_type(), d.record.record.id());
//!     d.ack().await?;
//! }
//! # Ok(()) }
//! ```

use firehose_core::crypto::{Crypto, PublicKey};
use firehose_core::message::SignedRecord;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

pub use firehose_core::protocol::mq::{broker_uri, queue_names, redacted, BrokerError};

/// Errors of the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The broker or the connection.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// A message that is not a validly signed record (it was rejected, not requeued).
    #[error("bad message {message_id:?}: {error}")]
    BadMessage {
        /// Its `message_id` property, if any.
        message_id: Option<String>,
        /// Why.
        error: firehose_core::Error,
    },
}

/// A consumer of one queue.
pub struct MqConsumer {
    _conn: Connection,
    consumer: lapin::Consumer,
    crypto: Crypto,
    distributor_key: PublicKey,
}

impl std::fmt::Debug for MqConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqConsumer")
            .field("distributor_key", &self.distributor_key)
            .finish_non_exhaustive()
    }
}

/// One verified record, not acknowledged yet.
#[derive(Debug)]
pub struct MqDelivery {
    /// The record and its signer.
    pub record: SignedRecord,
    /// The `message_id` property (the same for a duplicate of the same record).
    pub message_id: Option<String>,
    /// The broker delivered it before (to this or another consumer) without an ack.
    pub redelivered: bool,
    acker: lapin::Acker,
}

impl MqDelivery {
    /// Acknowledges it: the broker forgets it.
    pub async fn ack(self) -> Result<(), ConsumerError> {
        self.acker.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// Gives it back to the queue (it will be delivered again).
    pub async fn nack_requeue(self) -> Result<(), ConsumerError> {
        self.acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await?;
        Ok(())
    }
}

impl MqConsumer {
    /// Connects to `uri` and consumes `queue` with `prefetch` unacknowledged messages at most
    /// (relayer-collector uses 10-20), checking signatures against `distributor_key`.
    pub async fn connect(
        uri: &str,
        queue: &str,
        prefetch: u16,
        distributor_key: PublicKey,
    ) -> Result<Self, ConsumerError> {
        let conn = Connection::connect(
            uri,
            ConnectionProperties::default().with_connection_name("firehose-collector".into()),
        )
        .await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            _conn: conn,
            consumer,
            crypto: Crypto::default(),
            distributor_key,
        })
    }

    /// Uses another hash key than Shardus's default.
    pub fn with_crypto(mut self, crypto: Crypto) -> Self {
        self.crypto = crypto;
        self
    }

    /// The next verified record; `None` when the consumer was cancelled. A message that fails
    /// verification is rejected (not requeued) and reported as
    /// [`ConsumerError::BadMessage`]; the consumer goes on.
    pub async fn next(&mut self) -> Option<Result<MqDelivery, ConsumerError>> {
        let d = match self.consumer.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(e.into())),
        };
        let message_id = d.properties.message_id().as_ref().map(|s| s.to_string());
        match SignedRecord::verify_json(&self.crypto, &d.data, &self.distributor_key) {
            Ok(record) => Some(Ok(MqDelivery {
                record,
                message_id,
                redelivered: d.redelivered,
                acker: d.acker,
            })),
            Err(error) => {
                if let Err(e) = d.acker.reject(BasicRejectOptions { requeue: false }).await {
                    return Some(Err(e.into()));
                }
                Some(Err(ConsumerError::BadMessage { message_id, error }))
            }
        }
    }
}
