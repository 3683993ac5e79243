//! Tests of the ECR login, by topic as the code is split: `host`, `keys`, `token` (answers and
//! the call), `error`, `sigv4`, `source` (the credential source against a canned local
//! endpoint), `refresh` (its renewal: refused tokens, expiry by an injected clock) and `repos`
//! (CreateRepository). Shared here: example keys, fixed times, base64 and a log capture.

mod error;
mod host;
mod keys;
mod refresh;
mod repos;
mod sigv4;
mod source;
mod token;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::AwsKeys;
use ferry_base::secret::Secret;

const ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn keys() -> AwsKeys {
    AwsKeys::new(ID, Secret::new(SECRET))
}

fn at(epoch: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(epoch)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Captures log output of the current thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
