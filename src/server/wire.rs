//! The connection loop: every frontend message is cut from the stream by its length and
//! checked, field by field, before pgwire decodes it.
//!
//! pgwire's decoders trust a message's length field and read its fields without bounds: a
//! length below 4, or a body shorter than its fields, panicked the connection's task, and a
//! short message read into the next one (issue 25). Here, after the startup packet (which
//! pgwire reads with its own bounds), each message is split off alone, [`check`]ed as
//! PostgreSQL's `pq_getmsg*` functions would, and only then given to pgwire's decoder, which
//! therefore never reads past it. What PostgreSQL closes the connection for (a bad length, an
//! unknown message type) is FATAL 08P01 here too; a malformed body is an ERROR (08P01, 22023,
//! 22021 for invalid UTF-8) after which the connection goes on, skipping to the next Sync
//! within an extended-query exchange.

use crate::error::{Severity, SqlState};
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{MaybeTls, PgWireMessageServerCodec, negotiate_tls, process_error, process_message};
use std::io;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Framed};

/// The largest message a client may send: a statement's text, a Bind's parameters, a piece of
/// COPY data. PostgreSQL allows 1 GB, all of it held in memory before anything checks it; a
/// statement of this size already takes seconds to tokenize, and COPY clients send far
/// smaller pieces.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// The largest message of the kinds that carry no data (Sync, Execute, Describe, ...), as
/// PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`.
const MAX_SMALL_MESSAGE_BYTES: usize = 10_000;
/// Statements at least this long are processed off the runtime's workers (see [`serve`]).
const LONG_STATEMENT_BYTES: usize = 64 << 10;

/// What is wrong with a message.
#[derive(Debug)]
enum Problem {
    /// The stream cannot be read on: answered, then the connection closes.
    Fatal(Box<ErrorInfo>),
    /// The message is bad but its end is known: answered, and the connection goes on.
    Error(Box<ErrorInfo>),
}

fn fatal(code: SqlState, message: impl Into<String>) -> Problem {
    Problem::Fatal(Box::new(code.error_info_as(Severity::Fatal, message)))
}

fn error(code: SqlState, message: impl Into<String>) -> Problem {
    Problem::Error(Box::new(code.error_info_as(Severity::Error, message)))
}

const PROTOCOL_VIOLATION: SqlState = SqlState::ProtocolViolation;

/// Serves one client connection until it ends: TLS negotiation and the startup packet by
/// pgwire, then every message through [`next_message`]. When the client hangs up while a
/// message is being processed (a statement running), `interrupt` is called, which cancels
/// the statement as a cancel request would, instead of letting it run on for nobody. When
/// `closing` turns true (the server stops), the connection ends once the message being
/// processed is answered: FATAL 57P01, as PostgreSQL's shutdown says it.
pub async fn serve<H: PgWireServerHandlers>(
    socket: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    interrupt: impl Fn(),
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    // A second descriptor of the same socket, only ever peeked at, to see the client hang up
    // while the connection is busy and not reading.
    let std_socket = socket.into_std()?;
    let watcher = TcpStream::from_std(std_socket.try_clone()?)?;
    let socket = TcpStream::from_std(std_socket)?;
    let Some(mut socket) = negotiate_tls(socket, tls).await? else {
        // Direct TLS without a certificate configured: nothing to say to such a client.
        return Ok(());
    };
    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    let mut seen_password = false;
    // Within an extended-query exchange whose Parse held a long statement.
    let mut long_exchange = false;
    // Between an extended-query message and its Sync: the client waits for the answers to come.
    let mut in_exchange = false;
    // What each read from the socket lands in before it joins the frame buffer.
    let mut scratch = BytesMut::with_capacity(64 << 10);
    loop {
        let expects_sasl_initial =
            !seen_password && matches!(socket.state(), PgWireConnectionState::AuthenticationInProgress);
        // The server stopping closes the connection between exchanges, not within one.
        let between = !in_exchange && !matches!(socket.state(), PgWireConnectionState::CopyInProgress(_));
        let next = tokio::select! {
            biased;
            () = server_stops(&mut closing), if between => {
                let info = SqlState::AdminShutdown.error_info("terminating connection due to administrator command");
                let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
                break;
            }
            next = next_message(&mut socket, &mut scratch, expects_sasl_initial) => next?,
        };
        let message = match next {
            None => break,
            Some(Ok(message)) => message,
            Some(Err((kind, problem))) => {
                // Before authentication every problem ends the connection: going on would
                // answer ReadyForQuery to a client that never authenticated.
                let authenticating = matches!(
                    socket.state(),
                    PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
                );
                let (mut info, is_fatal) = match problem {
                    Problem::Fatal(info) => (info, true),
                    Problem::Error(info) => (info, authenticating),
                };
                if is_fatal {
                    info.severity = Severity::Fatal.as_str().into();
                }
                // Within an extended-query exchange the messages up to the next Sync are skipped.
                let extended = !is_fatal
                    && (b"PBEDCHS".contains(&kind) || matches!(socket.state(), PgWireConnectionState::AwaitingSync));
                tracing::debug!(code = %info.code, message = %info.message, "malformed frontend message");
                if is_fatal {
                    // As PostgreSQL: the error, then the end of the connection (no ReadyForQuery).
                    socket.send(PgWireBackendMessage::ErrorResponse((*info).into())).await?;
                    break;
                }
                process_error(&mut socket, PgWireError::UserError(info), extended).await?;
                continue;
            }
        };
        seen_password |= matches!(message, PgWireFrontendMessage::PasswordMessageFamily(_));
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(is_extended) => is_extended,
            _ => message.is_extended_query(),
        };
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        // A long statement takes long to plan (DataFusion plans a 100,000-term IN list for
        // seconds), and planning does not yield: it is processed on a thread of its own, so
        // that the runtime's workers go on serving the other connections. An extended-query
        // exchange is long from its Parse to its Sync.
        let long_text = |text: &str| text.len() >= LONG_STATEMENT_BYTES;
        let long = match &message {
            PgWireFrontendMessage::Query(q) => long_text(&q.query),
            PgWireFrontendMessage::Parse(p) => {
                long_exchange = long_text(&p.query);
                long_exchange
            }
            _ => long_exchange,
        };
        in_exchange = message.is_extended_query() && !matches!(message, PgWireFrontendMessage::Sync(_));
        if matches!(message, PgWireFrontendMessage::Sync(_)) {
            long_exchange = false;
        }
        let outcome = {
            let processing = process_message(
                message,
                &mut socket,
                startup.clone(),
                simple.clone(),
                extended.clone(),
                copy.clone(),
                cancel.clone(),
            );
            let run = async {
                tokio::pin!(processing);
                tokio::select! {
                    outcome = &mut processing => outcome,
                    () = hung_up(&watcher) => {
                        tracing::debug!("the client hung up while its statement ran: cancelled");
                        interrupt();
                        processing.await
                    }
                }
            };
            let handle = tokio::runtime::Handle::current();
            if long && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                tokio::task::block_in_place(|| handle.block_on(run))
            } else {
                run.await
            }
        };
        if let Err(mut e) = outcome {
            errors.on_error(&socket, &mut e);
            let is_fatal = e.is_fatal();
            process_error(&mut socket, e, is_extended).await?;
            if is_fatal {
                break;
            }
        }
        if is_cancel {
            break;
        }
    }
    // Dropping the socket closes it (a FATAL error or a Terminate ends the session).
    let _ = socket.close().await;
    Ok(())
}

type Socket<S> = Framed<MaybeTls, PgWireMessageServerCodec<S>>;

/// Resolves when `closing` turns true; never if the server is gone without saying so.
async fn server_stops(closing: &mut tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves when the client has gone: the peer closed the connection, or what waits unread
/// is a Terminate (the client said goodbye without waiting for its answer). Other bytes
/// waiting (the client's next messages, sent ahead) mean it is still there; they are looked
/// at again now and then, since a peek returns at once while they wait.
async fn hung_up(watcher: &TcpStream) {
    const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];
    let mut head = [0u8; 5];
    loop {
        match watcher.peek(&mut head).await {
            Ok(0) | Err(_) => return,
            Ok(5) if head == TERMINATE => return,
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// The next message from the client; `None` at the end of the stream.
/// A problem comes with the type byte of the message it is about (0 for the startup packet).
async fn next_message<S>(
    socket: &mut Socket<S>,
    scratch: &mut BytesMut,
    expects_sasl_initial: bool,
) -> io::Result<Option<Result<PgWireFrontendMessage, (u8, Problem)>>> {
    if matches!(socket.state(), PgWireConnectionState::AwaitingStartup) {
        // The startup packet (and a cancel request) have no type byte; pgwire bounds them.
        return Ok(match socket.next().await {
            None => None,
            Some(Ok(message)) => Some(Ok(message)),
            Some(Err(e)) => Some(Err((0, Problem::Fatal(Box::new(ErrorInfo::from(e)))))),
        });
    }
    loop {
        match frame(socket.read_buffer()) {
            Err(problem) => return Ok(Some(Err((socket.read_buffer()[0], problem)))),
            Ok(Some(total)) => {
                let mut message = socket.read_buffer_mut().split_to(total);
                let kind = message[0];
                if let Err(problem) = check(&message, expects_sasl_initial) {
                    return Ok(Some(Err((kind, problem))));
                }
                return Ok(Some(match socket.codec_mut().decode(&mut message) {
                    Ok(Some(message)) => Ok(message),
                    Ok(None) => Err((kind, fatal(PROTOCOL_VIOLATION, "incomplete message from client"))),
                    Err(e) => Err((kind, Problem::Error(Box::new(ErrorInfo::from(e))))),
                }));
            }
            Ok(None) => {
                scratch.clear();
                if socket.get_mut().read_buf(scratch).await? == 0 {
                    return Ok(None);
                }
                socket.read_buffer_mut().extend_from_slice(scratch);
            }
        }
    }
}

/// The length of the message at the head of `buf`, type byte included, once all of it is
/// there; a length field no message can have is fatal, before anything waits for its body.
fn frame(buf: &[u8]) -> Result<Option<usize>, Problem> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let kind = buf[0];
    let length = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if !b"pQPBEDCHSXdcfF".contains(&kind) {
        return Err(fatal(PROTOCOL_VIOLATION, format!("invalid frontend message type {kind}")));
    }
    let limit = if b"QPBdpfF".contains(&kind) { MAX_MESSAGE_BYTES } else { MAX_SMALL_MESSAGE_BYTES };
    if length < 4 {
        return Err(fatal(PROTOCOL_VIOLATION, format!("invalid message length {length}")));
    }
    if length as usize > limit {
        return Err(if limit == MAX_MESSAGE_BYTES {
            fatal(
                SqlState::ProgramLimitExceeded,
                format!("message too large: {length} bytes (at most {} MB)", MAX_MESSAGE_BYTES >> 20),
            )
        } else {
            fatal(PROTOCOL_VIOLATION, format!("invalid message length {length}"))
        });
    }
    let total = 1 + length as usize;
    Ok((buf.len() >= total).then_some(total))
}

/// Reads a message body as PostgreSQL's `pq_getmsg*` do: every read within the body, and
/// nothing left over at the end.
struct Body<'a> {
    bytes: &'a [u8],
}

fn short() -> Problem {
    error(PROTOCOL_VIOLATION, "insufficient data left in message")
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        if n > self.bytes.len() {
            return Err(short());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, Problem> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")))
    }

    fn count(&mut self) -> Result<usize, Problem> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")) as usize)
    }

    fn i32(&mut self) -> Result<i32, Problem> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    /// A NUL-terminated string, which must be UTF-8 (the server's encoding).
    fn string(&mut self) -> Result<&'a str, Problem> {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| error(PROTOCOL_VIOLATION, "invalid string in message"))?;
        let text = self.take(end + 1)?;
        utf8(&text[..end])
    }

    fn end(&self) -> Result<(), Problem> {
        if self.bytes.is_empty() { Ok(()) } else { Err(error(PROTOCOL_VIOLATION, "invalid message format")) }
    }
}

/// `bytes` as UTF-8, or PostgreSQL's 22021 naming the first bad byte.
fn utf8(bytes: &[u8]) -> Result<&str, Problem> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let bad = &bytes[at..(at + e.error_len().unwrap_or(bytes.len() - at)).min(bytes.len())];
        let hex: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
        error(
            SqlState::CharacterNotInRepertoire,
            format!("invalid byte sequence for encoding \"UTF8\": {}", hex.join(" ")),
        )
    })
}

/// A format code: 0 (text) or 1 (binary).
fn format_code(code: i16) -> Result<bool, Problem> {
    match code {
        0 => Ok(false),
        1 => Ok(true),
        // PostgreSQL's ERRCODE_INVALID_PARAMETER_VALUE, for parameter and result formats alike.
        _ => Err(error(SqlState::InvalidParameterValue, format!("unsupported format code: {code}"))),
    }
}

/// Checks one whole message (type byte, length, body) field by field.
fn check(message: &[u8], expects_sasl_initial: bool) -> Result<(), Problem> {
    let mut body = Body { bytes: &message[5..] };
    match message[0] {
        b'Q' => {
            body.string()?;
        }
        b'P' => {
            body.string()?;
            body.string()?;
            let types = body.count()?;
            body.take(4 * types)?;
        }
        b'B' => {
            body.string()?;
            body.string()?;
            let formats = body.count()?;
            let binary: Vec<bool> = (0..formats).map(|_| body.i16().and_then(format_code)).collect::<Result<_, _>>()?;
            let params = body.count()?;
            if formats > 1 && formats != params {
                return Err(error(
                    PROTOCOL_VIOLATION,
                    format!("bind message has {formats} parameter formats but {params} parameters"),
                ));
            }
            for i in 0..params {
                let length = body.i32()?;
                if length == -1 {
                    continue;
                }
                if length < 0 {
                    return Err(error(
                        PROTOCOL_VIOLATION,
                        format!("invalid length {length} of bind parameter {}", i + 1),
                    ));
                }
                let value = body.take(length as usize)?;
                let is_binary = binary.get(if formats == 1 { 0 } else { i }).copied().unwrap_or(false);
                if !is_binary {
                    utf8(value)?;
                }
            }
            let results = body.count()?;
            for _ in 0..results {
                format_code(body.i16()?)?;
            }
        }
        b'E' => {
            body.string()?;
            body.i32()?;
        }
        b'D' | b'C' => {
            let target = body.take(1)?[0];
            if target != b'S' && target != b'P' {
                let what = if message[0] == b'D' { "DESCRIBE" } else { "CLOSE" };
                return Err(error(PROTOCOL_VIOLATION, format!("invalid {what} message subtype {target}")));
            }
            body.string()?;
        }
        b'H' | b'S' | b'X' | b'c' => {}
        b'd' => return Ok(()),
        b'f' => {
            body.string()?;
        }
        b'p' if expects_sasl_initial => {
            // SASLInitialResponse: the mechanism, then its data's length (-1: none) and data.
            body.string()?;
            let length = body.i32()?;
            if length >= 0 {
                body.take(length as usize)?;
            } else if length != -1 {
                return Err(short());
            }
        }
        // A password or a SASL response: bytes the authentication reads as it needs.
        b'p' => return Ok(()),
        b'F' => {
            return Err(error(
                SqlState::FeatureNotSupported,
                "the fast-path function call interface is not supported; call the function in SQL",
            ));
        }
        kind => return Err(fatal(PROTOCOL_VIOLATION, format!("invalid frontend message type {kind}"))),
    }
    body.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn code(r: Result<(), Problem>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(Problem::Fatal(i)) => format!("FATAL {}", i.code),
            Err(Problem::Error(i)) => i.code,
        }
    }

    #[test]
    fn lengths_below_four_and_unknown_types_are_fatal() {
        for kind in [b'd', b'p', b'B', b'E'] {
            for length in 0..4i32 {
                let mut m = vec![kind];
                m.extend_from_slice(&length.to_be_bytes());
                assert!(matches!(frame(&m), Err(Problem::Fatal(_))), "{} {length}", kind as char);
            }
        }
        assert!(matches!(frame(b"Z\0\0\0\x04"), Err(Problem::Fatal(_))));
        assert!(matches!(frame(b"S\0\0\0\x04"), Ok(Some(5))));
        assert!(matches!(frame(b"Q\0\0\0\x09ab"), Ok(None)));
        assert!(matches!(frame(b"S\x7f\0\0\0"), Err(Problem::Fatal(_))));
    }

    #[test]
    fn bodies_are_read_within_their_message() {
        assert_eq!(code(check(&message(b'Q', b"select 1\0"), false)), "ok");
        assert_eq!(code(check(&message(b'Q', b"select 1"), false)), "08P01");
        assert_eq!(code(check(&message(b'Q', b"select \xff\0"), false)), "22021");
        assert_eq!(code(check(&message(b'P', b"\0select 1\0"), false)), "08P01");
        assert_eq!(code(check(&message(b'P', b"\0select $1\0\0\x01\0\0\0\x17"), false)), "ok");
        assert_eq!(code(check(&message(b'E', b"\0\0"), false)), "08P01");
        assert_eq!(code(check(&message(b'E', b"\0\0\0\0\0"), false)), "ok");
        assert_eq!(code(check(&message(b'E', b"\0\0\0\0\0\0"), false)), "08P01");
        assert_eq!(code(check(&message(b'D', b"Q\0"), false)), "08P01");
        assert_eq!(code(check(&message(b'S', b"x"), false)), "08P01");
        assert_eq!(code(check(&message(b'p', b"SCRAM-SHA-256\0\0\0"), true)), "08P01");
        assert_eq!(code(check(&message(b'p', b"SCRAM-SHA-256\0\0\0\0\x01n"), true)), "ok");
    }

    #[test]
    fn bind_parameters_lengths_and_formats() {
        let bind = |formats: &[i16], params: &[&[u8]], results: &[i16]| {
            let mut b = b"\0\0".to_vec();
            b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
            formats.iter().for_each(|f| b.extend_from_slice(&f.to_be_bytes()));
            b.extend_from_slice(&(params.len() as u16).to_be_bytes());
            for p in params {
                b.extend_from_slice(p);
            }
            b.extend_from_slice(&(results.len() as u16).to_be_bytes());
            results.iter().for_each(|f| b.extend_from_slice(&f.to_be_bytes()));
            code(check(&message(b'B', &b), false))
        };
        assert_eq!(bind(&[], &[b"\0\0\0\x011"], &[]), "ok");
        assert_eq!(bind(&[], &[b"\xff\xff\xff\xff"], &[1]), "ok");
        assert_eq!(bind(&[], &[b"\xff\xff\xff\xfb"], &[]), "08P01");
        assert_eq!(bind(&[], &[b"\0\0\0\x09ab"], &[]), "08P01");
        assert_eq!(bind(&[7], &[b"\0\0\0\x011"], &[]), "22023");
        assert_eq!(bind(&[], &[], &[7]), "22023");
        assert_eq!(bind(&[0, 0], &[b"\0\0\0\x011"], &[]), "08P01");
        assert_eq!(bind(&[], &[b"\0\0\0\x01\xff"], &[]), "22021");
        assert_eq!(bind(&[1], &[b"\0\0\0\x01\xff"], &[]), "ok");
    }
}
