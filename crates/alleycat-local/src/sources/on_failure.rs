//! On-failure destinations: where an event source puts what it gave up on, as Lambda sends an
//! on-failure record to SQS.
//!
//! Here the destination is an NDJSON file per function under `<data-dir>/on-failure/`, one JSON
//! record per line in the shape Lambda sends (`requestContext`, `responseContext`, `version`,
//! `timestamp` and the batch or event info), so the records can be read back and replayed. A
//! record is written before the source's checkpoint moves past the batch: a crash in between
//! writes it twice, never zero times.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use crate::error::LocalError;

/// The on-failure records of every function.
#[derive(Debug)]
pub struct OnFailure {
    dir: PathBuf,
    lock: Mutex<()>,
}

/// Why a batch was given up on (`requestContext.condition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Every retry failed.
    RetryAttemptsExhausted,
}

impl OnFailure {
    /// Records under `dir` (created if missing).
    pub fn open(dir: PathBuf) -> Result<Self, LocalError> {
        std::fs::create_dir_all(&dir).map_err(|source| LocalError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            lock: Mutex::new(()),
        })
    }

    /// The file of `function`'s records.
    pub fn path(&self, function: &str) -> PathBuf {
        self.dir.join(format!("{function}.ndjson"))
    }

    /// Appends one record for `function`: `info` is the source's part (`KinesisBatchInfo`,
    /// `DDBStreamBatchInfo`, or the event itself for asynchronous invocations), `error` the last
    /// failure.
    pub fn record(
        &self,
        function: &str,
        condition: Condition,
        attempts: u32,
        error: &str,
        info: (&str, Value),
    ) -> Result<(), LocalError> {
        let mut record = json!({
            "requestContext": {
                "requestId": format!("{:032x}", fastrand::u128(..)),
                "functionArn": format!("arn:aws:lambda:local:000000000000:function:{function}"),
                "condition": match condition {
                    Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
                },
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": error,
            },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        record[info.0] = info.1;
        let path = self.path(function);
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let io = |source| LocalError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut line = record.to_string();
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io)?;
        tracing::error!(function, path = %path.display(), error, "gave up on a batch after {attempts} attempts: on-failure record written");
        Ok(())
    }

    /// Every record of `function` so far (tests, status).
    pub fn records(&self, function: &str) -> Vec<Value> {
        read_records(&self.path(function))
    }
}

fn read_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
