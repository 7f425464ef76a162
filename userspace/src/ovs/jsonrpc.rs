//! Blocking OVSDB JSON-RPC 1.0 client (RFC 7047) over a unix socket.
//!
//! OVSDB frames nothing: messages are JSON values back to back on the stream, so
//! we parse them with serde_json's streaming deserializer. The server may send
//! its own requests between our request and its reply (`echo` keep-alives,
//! `update` notifications); we answer `echo` and skip the rest, because we never
//! register a monitor.

use std::io::{self, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{MsgFlags, send};
use serde_json::de::IoRead;
use serde_json::{Deserializer, StreamDeserializer, Value, json};
use tracing::debug;

use super::OvsError;

/// How long one reply may take. ovsdb-server answers in milliseconds; a stuck
/// server must become an error, not a hung `vethscope`.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

type Reader = StreamDeserializer<'static, IoRead<BufReader<UnixStream>>, Value>;

pub struct JsonRpc {
    path: PathBuf,
    writer: UnixStream,
    reader: Reader,
    next_id: u64,
    /// Set after any I/O or parse failure: the stream position is then unknown,
    /// so every later call fails instead of pairing replies with the wrong request.
    broken: bool,
}

impl JsonRpc {
    pub fn connect(path: &Path) -> Result<Self, OvsError> {
        let connect_err = |source| OvsError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let writer = UnixStream::connect(path).map_err(connect_err)?;
        writer
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| writer.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(connect_err)?;
        let read_half = writer.try_clone().map_err(connect_err)?;
        let reader = Deserializer::from_reader(BufReader::new(read_half)).into_iter();
        debug!(socket = %path.display(), "connected (OVSDB or unixctl JSON-RPC)");
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            reader,
            next_id: 1,
            broken: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One request, one reply; `error` in the reply becomes [`OvsError::Rpc`].
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsError> {
        if self.broken {
            return Err(self.io_err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection unusable after an earlier failure",
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "method": method, "params": params, "id": id }))?;
        loop {
            let msg = self.recv()?;
            if let Some(request) = msg.get("method").and_then(Value::as_str) {
                self.serve(request, &msg)?;
                continue;
            }
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                debug!(?msg, "skipping reply to an older request");
                continue;
            }
            let Value::Object(mut reply) = msg else {
                return Err(self.protocol("reply is not an object"));
            };
            match reply.remove("error") {
                None | Some(Value::Null) => {}
                Some(error) => {
                    return Err(OvsError::Rpc {
                        path: self.path.clone(),
                        method: method.to_string(),
                        error: error_text(&error),
                    });
                }
            }
            return Ok(reply.remove("result").unwrap_or(Value::Null));
        }
    }

    /// `transact` on `db`; returns the per-operation results (RFC 7047 §4.1.3).
    /// Operation-level errors are left to the caller, which knows what each
    /// operation meant.
    pub fn transact(&mut self, db: &str, ops: Vec<Value>) -> Result<Vec<Value>, OvsError> {
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(json!(db));
        params.extend(ops);
        match self.call("transact", Value::Array(params))? {
            Value::Array(results) => Ok(results),
            other => Err(self.protocol(&format!("transact result is not an array: {other}"))),
        }
    }

    /// Liveness probe: the server must echo our parameters back.
    pub fn echo(&mut self) -> Result<(), OvsError> {
        let params = json!(["vethscope"]);
        let result = self.call("echo", params.clone())?;
        if result == params {
            Ok(())
        } else {
            Err(self.protocol(&format!("echo returned {result}")))
        }
    }

    pub fn list_dbs(&mut self) -> Result<Vec<String>, OvsError> {
        match self.call("list_dbs", json!([]))? {
            Value::Array(names) => Ok(names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()),
            other => Err(self.protocol(&format!("list_dbs result is not an array: {other}"))),
        }
    }

    /// Answer a request the server sent us. Only `echo` needs an answer: the
    /// server drops clients that ignore it. Notifications (`update`, `locked`,
    /// ...) are not ours since we never monitor or lock.
    fn serve(&mut self, method: &str, msg: &Value) -> Result<(), OvsError> {
        if method == "echo" {
            let id = msg.get("id").cloned().unwrap_or(Value::Null);
            let params = msg.get("params").cloned().unwrap_or(json!([]));
            debug!("answering echo from ovsdb-server");
            self.send(&json!({ "id": id, "result": params, "error": null }))
        } else {
            debug!(method, "ignoring unsolicited message from ovsdb-server");
            Ok(())
        }
    }

    fn send(&mut self, msg: &Value) -> Result<(), OvsError> {
        let bytes = msg.to_string().into_bytes();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            // MSG_NOSIGNAL: a server that went away must give EPIPE, not kill us
            // with SIGPIPE.
            match send(self.writer.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
                Ok(0) => {
                    self.broken = true;
                    return Err(self.io_err(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => {
                    self.broken = true;
                    return Err(self.io_err(errno.into()));
                }
            }
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<Value, OvsError> {
        match self.reader.next() {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => {
                self.broken = true;
                if e.is_io() || e.is_eof() {
                    Err(self.io_err(e.into()))
                } else {
                    Err(self.protocol(&e.to_string()))
                }
            }
            None => {
                self.broken = true;
                Err(self.io_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "ovsdb-server closed the connection",
                )))
            }
        }
    }

    fn io_err(&self, source: io::Error) -> OvsError {
        OvsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn protocol(&self, detail: &str) -> OvsError {
        OvsError::Protocol {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }
}

/// OVSDB puts either a string or `{"error": ..., "details": ...}` in `error`.
pub fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let head = o.get("error").map(error_text).unwrap_or_default();
            match o.get("details").and_then(Value::as_str) {
                Some(details) if !details.is_empty() => format!("{head}: {details}"),
                _ => head,
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Write};
    use std::os::unix::net::UnixListener;

    /// A fake ovsdb-server that sends an `echo` request and an unrelated
    /// notification before its reply, split across writes, and checks that
    /// the client answered the echo.
    #[test]
    fn answers_echo_and_parses_a_split_stream() {
        let dir = std::env::temp_dir().join(format!("vso-rpc-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let sock = dir.join("fake.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).expect("bind fake server");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut lines = std::io::BufReader::new(conn.try_clone().expect("clone"));
            // Our client sends compact JSON without newlines: read one value.
            let mut de = Deserializer::from_reader(&mut lines).into_iter::<Value>();
            let request = de.next().expect("request").expect("json");
            assert_eq!(request["method"], "transact");
            let id = request["id"].clone();
            conn.write_all(br#"{"method":"echo","params":["ping"],"id":"echo-1"}{"method":"upd"#)
                .expect("write");
            conn.write_all(br#"ate","params":[null,{}],"id":null}"#)
                .expect("write");
            let echo_reply = de.next().expect("echo reply").expect("json");
            assert_eq!(
                echo_reply,
                json!({"id": "echo-1", "result": ["ping"], "error": null})
            );
            let reply = json!({"id": id, "result": [{"rows": []}], "error": null}).to_string();
            let (a, b) = reply.split_at(7);
            conn.write_all(a.as_bytes()).expect("write");
            conn.flush().expect("flush");
            conn.write_all(b.as_bytes()).expect("write");
            let _ = lines.fill_buf();
        });
        let mut rpc = JsonRpc::connect(&sock).expect("connect");
        let results = rpc
            .transact(
                "Open_vSwitch",
                vec![json!({"op": "select", "table": "Bridge", "where": []})],
            )
            .expect("transact");
        assert_eq!(results, vec![json!({"rows": []})]);
        drop(rpc);
        server.join().expect("server thread");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn error_text_reads_both_shapes() {
        assert_eq!(error_text(&json!("unknown method")), "unknown method");
        assert_eq!(
            error_text(&json!({"error": "constraint violation", "details": "dup name"})),
            "constraint violation: dup name"
        );
    }
}
