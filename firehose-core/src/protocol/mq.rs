//! MQ mode's names, shared by the publisher and the consumers: the queues of a consumer
//! group and the broker address from relayer-collector's `RMQ_*` variables.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::records::{DataType, Record};

/// Queue names for a consumer group `prefix` (the relayer-collector deployments' pattern):
/// `<prefix>.cycles`, `<prefix>.originalTxs`, `<prefix>.receipts`.
pub fn queue_names(prefix: &str) -> [(DataType, String); 3] {
    [
        (DataType::Cycle, format!("{prefix}.cycles")),
        (DataType::OriginalTx, format!("{prefix}.originalTxs")),
        (DataType::Receipt, format!("{prefix}.receipts")),
    ]
}

/// A broker setting that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BrokerError(String);

/// The broker URI from relayer-collector's variables, read with `get`: `RMQ_PROTOCOL`
/// (`amqp`/`amqps`), `RMQ_HOST`, `RMQ_PORT`, `RMQ_USER`, `RMQ_PASS`, `RMQ_VHOST`
/// (defaults: `amqp://guest:guest@localhost:5672/%2F`).
///
/// ```
/// let env = |k: &str| (k == "RMQ_PASS").then(|| "p@ss".to_owned());
/// let uri = firehose_core::protocol::mq::broker_uri(env).unwrap();
/// assert_eq!(uri, "amqp://guest:p%40ss@localhost:5672/%2F");
/// assert_eq!(firehose_core::protocol::mq::redacted(&uri), "amqp://guest:***@localhost:5672/%2F");
/// ```
pub fn broker_uri(get: impl Fn(&str) -> Option<String>) -> Result<String, BrokerError> {
    let var = |k: &str, default: &str| get(k).unwrap_or_else(|| default.to_owned());
    let protocol = var("RMQ_PROTOCOL", "amqp");
    if protocol != "amqp" && protocol != "amqps" {
        return Err(BrokerError(format!(
            "RMQ_PROTOCOL={protocol}: expected amqp or amqps"
        )));
    }
    let port: u16 = var("RMQ_PORT", "5672")
        .parse()
        .map_err(|e| BrokerError(format!("RMQ_PORT: {e}")))?;
    let enc = |s: String| utf8_percent_encode(&s, NON_ALPHANUMERIC).to_string();
    Ok(format!(
        "{protocol}://{}:{}@{}:{port}/{}",
        enc(var("RMQ_USER", "guest")),
        enc(var("RMQ_PASS", "guest")),
        var("RMQ_HOST", "localhost"),
        enc(var("RMQ_VHOST", "/")),
    ))
}

/// `uri` with its password replaced by `***`, for logs.
pub fn redacted(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &uri[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..s + 3], &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

/// The AMQP `message_id` of a record, by which consumers drop duplicates: its key, with the timestamp for rows that can be replaced by
/// a newer version (a re-published newer version gets a new id, a duplicate the same).
pub fn message_id(r: &Record) -> String {
    match r {
        Record::Cycle(c) => format!("cycle:{}:{}", c.counter, c.cycle_marker),
        Record::OriginalTx(t) => format!("originalTx:{}:{}", t.tx_id, t.timestamp),
        Record::Receipt(x) => format!("receipt:{}:{}", x.receipt_id, x.timestamp),
    }
}
