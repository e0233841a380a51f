//! The history API's routes as both ends must agree on them: the path, the key of the reply's
//! row list, the widest `{start, end}` span one request may ask for, and the `/totalData` key
//! that counts the route's rows.
//!
//! Spans are inclusive and the limit is on `end - start`, as the original checks it: a request
//! `{start: 0, end: 100}` is legal on a route with [`Route::max_span`] 100 and returns 101 rows.
//!
//! ```
//! use firehose_core::protocol::history::{Route, ROUTES};
//! let receipts = Route::find("receipt").unwrap();
//! assert_eq!((receipts.path, receipts.rows, receipts.max_span), ("/receipt", "receipts", 100));
//! assert_eq!(ROUTES.len(), 5);
//! ```

/// One history route that pages rows by `{start, end}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The POST path.
    pub path: &'static str,
    /// The reply key holding the rows.
    pub rows: &'static str,
    /// The largest `end - start` of one request.
    pub max_span: u64,
    /// The `/totalData` reply key counting this route's rows.
    pub total: &'static str,
    /// What `start` and `end` count: cycle counters (`true`) or row offsets (`false`).
    pub by_counter: bool,
}

/// Cycles, by counter.
pub const CYCLES: Route = Route {
    path: "/cycleinfo",
    rows: "cycleInfo",
    max_span: 100,
    total: "totalCycles",
    by_counter: true,
};
/// Receipts, by row offset in (cycle, timestamp) order.
pub const RECEIPTS: Route = Route {
    path: "/receipt",
    rows: "receipts",
    max_span: 100,
    total: "totalReceipts",
    by_counter: false,
};
/// Original transactions, by row offset in (cycle, timestamp) order.
pub const ORIGINAL_TXS: Route = Route {
    path: "/originalTx",
    rows: "originalTxs",
    max_span: 100,
    total: "totalOriginalTxs",
    by_counter: false,
};
/// Accounts, by row offset in (cycleNumber, timestamp) order.
pub const ACCOUNTS: Route = Route {
    path: "/account",
    rows: "accounts",
    max_span: 1000,
    total: "totalAccounts",
    by_counter: false,
};
/// Transactions, by row offset in (cycleNumber, timestamp) order.
pub const TRANSACTIONS: Route = Route {
    path: "/transaction",
    rows: "transactions",
    max_span: 1000,
    total: "totalTransactions",
    by_counter: false,
};

/// Every route that pages by `{start, end}`.
pub const ROUTES: [Route; 5] = [CYCLES, RECEIPTS, ORIGINAL_TXS, ACCOUNTS, TRANSACTIONS];

/// `/totalData`: the row count of every table (no selector).
pub const TOTAL_DATA: &str = "/totalData";

impl Route {
    /// The route at `path`, with or without its leading `/`.
    pub fn find(path: &str) -> Option<Route> {
        let path = path.trim_start_matches('/');
        ROUTES.into_iter().find(|r| &r.path[1..] == path)
    }

    /// The `{start, end}` requests that cover `first..=last`, each at most
    /// [`Route::max_span`] wide (so `max_span + 1` rows).
    ///
    /// ```
    /// use firehose_core::protocol::history::CYCLES;
    /// let spans: Vec<_> = CYCLES.spans(0, 250).collect();
    /// assert_eq!(spans, [(0, 100), (101, 201), (202, 250)]);
    /// assert_eq!(CYCLES.spans(5, 4).count(), 0);
    /// assert_eq!(CYCLES.spans(u64::MAX - 1, u64::MAX).collect::<Vec<_>>(), [(u64::MAX - 1, u64::MAX)]);
    /// ```
    pub fn spans(&self, first: u64, last: u64) -> impl Iterator<Item = (u64, u64)> {
        let span = self.max_span;
        let mut next = (first <= last).then_some(first);
        std::iter::from_fn(move || {
            let start = next?;
            let end = start.saturating_add(span).min(last);
            next = end.checked_add(1).filter(|n| *n <= last);
            Some((start, end))
        })
    }
}
