//! COPY over the wire: reading COPY ... FROM STDIN data (text, CSV, binary) into the table's
//! new file, and writing COPY ... TO STDOUT rows.
//!
//! A COPY FROM writes one Parquet file under a `.tmp` name while the data arrives; at CopyDone
//! the file is renamed into the table, so the rows appear all at once. A data error, a
//! CopyFail or a connection that drops leaves nothing (the file is removed). As in
//! PostgreSQL, a data error is reported once the client ends the copy; the data it sends after
//! the error is read and dropped.

use super::params;
use crate::error::{Error, Result, SqlState};
use crate::pg::copy::CopyFormat;
use crate::pg::encode::{EncodeError, write_binary, write_text};
use crate::session::{CopyIn, CopyOut};
use crate::store::Store;
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt};
use pgwire::api::results::FieldFormat;
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;

/// Rows per batch written to the file.
const BATCH_ROWS: usize = 8192;
/// The longest line (text, CSV record, binary tuple) COPY holds while waiting for its end:
/// beyond it the copy fails with 54000 instead of buffering without bound.
pub const MAX_LINE_BYTES: usize = 64 << 20;
const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// One parsed line: a value per data column, NULL as None.
type Row = Vec<Option<Vec<u8>>>;

/// A COPY FROM in progress on a connection.
#[derive(Debug)]
pub struct CopyInState {
    target: CopyIn,
    /// Data not parsed yet: the start of a line whose end has not arrived.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no line end, so that each byte is looked at once
    /// however many messages a long line arrives in (each message rescanned the whole buffer:
    /// one 8 MB line in 4 KB messages took 8 s). For CSV, also whether that much ends inside
    /// quotes.
    scanned: usize,
    scanned_in_quotes: bool,
    /// Rows parsed and not yet written: one value per data column, NULL as None.
    rows: Vec<Row>,
    /// Data lines (text, CSV) or tuples (binary) read, for error messages.
    line: u64,
    header_pending: bool,
    ended: bool,
    /// The first error; the rest of the data is dropped.
    error: Option<Error>,
}

impl CopyInState {
    pub fn new(target: CopyIn) -> CopyInState {
        let header_pending = matches!(target.format, CopyFormat::Csv { header: true, .. } | CopyFormat::Binary);
        CopyInState {
            target,
            buf: vec![],
            scanned: 0,
            scanned_in_quotes: false,
            rows: vec![],
            line: 0,
            header_pending,
            ended: false,
            error: None,
        }
    }

    pub fn format(&self) -> &CopyFormat {
        &self.target.format
    }

    pub fn columns(&self) -> usize {
        self.target.columns.len()
    }

    /// Takes a CopyData message.
    pub fn data(&mut self, data: &[u8]) {
        if self.error.is_some() || self.ended {
            return;
        }
        self.buf.extend_from_slice(data);
        if let Err(e) = self.parse(false).and_then(|_| self.flush(false)).and_then(|_| self.check_line_length()) {
            self.error = Some(e);
            self.buf = vec![];
            self.rows = vec![];
        }
    }

    /// Whether the next data is likely to fill a batch and write it to the file.
    pub fn writes_next(&self) -> bool {
        self.rows.len() + 64 >= BATCH_ROWS
    }

    /// CopyDone: parses what is left, writes it, publishes the file. Returns the row count.
    pub fn finish(mut self, store: &Store) -> Result<u64> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.parse(true)?;
        self.flush(true)?;
        let CopyIn { schema, table, writer, .. } = self.target;
        store.append_file(&schema, &table, writer)
    }

    fn bad(&self, message: String) -> Error {
        Error::sql(
            SqlState::BadCopyFileFormat,
            format!("{message} (COPY {}, line {})", self.target.table, self.line.max(1)),
        )
    }

    /// What is buffered is one unfinished line: at most [`MAX_LINE_BYTES`] of it.
    fn check_line_length(&self) -> Result<()> {
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(Error::sql(
                SqlState::ProgramLimitExceeded,
                format!(
                    "COPY {}, line {}: a line longer than {} MB",
                    self.target.table,
                    self.line + 1,
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    fn parse(&mut self, at_end: bool) -> Result<()> {
        match self.target.format.clone() {
            CopyFormat::Text { delimiter, null } => self.parse_text(delimiter, &null, at_end),
            CopyFormat::Csv { delimiter, quote, escape, null, header } => {
                self.parse_csv(delimiter, quote, escape, &null, header, at_end)
            }
            CopyFormat::Binary => self.parse_binary(at_end),
        }
    }

    fn push_row(&mut self, row: Row) -> Result<()> {
        if row.len() != self.columns() {
            let msg = if row.len() < self.columns() {
                "missing data for a column"
            } else {
                "extra data after last expected column"
            };
            return Err(self.bad(format!("{msg}: {} values, {} columns", row.len(), self.columns())));
        }
        self.rows.push(row);
        Ok(())
    }

    fn parse_text(&mut self, delimiter: u8, null: &str, at_end: bool) -> Result<()> {
        let mut start = 0;
        // The first line's end is looked for where the last message's search stopped.
        let mut from = self.scanned.min(self.buf.len());
        loop {
            let end = match self.buf[from..].iter().position(|b| *b == b'\n') {
                Some(i) => from + i,
                None if at_end && start < self.buf.len() => self.buf.len(),
                None => break,
            };
            let mut line = &self.buf[start..end];
            start = (end + 1).min(self.buf.len());
            from = start;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            self.line += 1;
            if line == b"\\." {
                self.ended = true;
                break;
            }
            let row = text_fields(line, delimiter, null);
            self.push_row(row)?;
            if end == self.buf.len() {
                break;
            }
        }
        self.buf.drain(..start.min(self.buf.len()));
        self.scanned = self.buf.len();
        Ok(())
    }

    fn parse_csv(
        &mut self,
        delimiter: u8,
        quote: u8,
        escape: u8,
        null: &str,
        header: bool,
        at_end: bool,
    ) -> Result<()> {
        let mut start = 0;
        while start < self.buf.len() {
            if !at_end {
                // Parse a record only once its end is there; until then only scan the new bytes.
                let (end, scanned, in_quotes) =
                    csv_record_end(&self.buf[start..], self.scanned, self.scanned_in_quotes, quote, escape);
                (self.scanned, self.scanned_in_quotes) = (scanned, in_quotes);
                if end.is_none() {
                    break;
                }
            }
            (self.scanned, self.scanned_in_quotes) = (0, false);
            let Some((row, next)) =
                csv_record(&self.buf[start..], delimiter, quote, escape, null, at_end).map_err(|m| self.bad(m))?
            else {
                break;
            };
            let raw = &self.buf[start..start + next];
            start += next;
            self.line += 1;
            if raw.strip_suffix(b"\n").map(|r| r.strip_suffix(b"\r").unwrap_or(r)) == Some(b"\\.")
                || (at_end && raw == b"\\.")
            {
                self.ended = true;
                break;
            }
            if header && self.header_pending {
                self.header_pending = false;
                continue;
            }
            self.push_row(row)?;
        }
        self.buf.drain(..start);
        Ok(())
    }

    fn parse_binary(&mut self, at_end: bool) -> Result<()> {
        let mut pos = 0;
        if self.header_pending {
            if self.buf.len() < 19 {
                return if at_end { Err(self.bad("COPY file signature not recognized".into())) } else { Ok(()) };
            }
            if &self.buf[..11] != BINARY_SIGNATURE {
                return Err(self.bad("COPY file signature not recognized".into()));
            }
            let ext = u32::from_be_bytes([self.buf[15], self.buf[16], self.buf[17], self.buf[18]]) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            pos = 19 + ext;
            self.header_pending = false;
        }
        loop {
            let rest = &self.buf[pos..];
            if rest.len() < 2 {
                break;
            }
            let count = i16::from_be_bytes([rest[0], rest[1]]);
            if count == -1 {
                self.ended = true;
                pos = self.buf.len();
                break;
            }
            let mut p = 2;
            let mut row = Vec::with_capacity(count.max(0) as usize);
            let mut complete = true;
            for _ in 0..count.max(0) {
                if rest.len() < p + 4 {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes([rest[p], rest[p + 1], rest[p + 2], rest[p + 3]]);
                p += 4;
                if len < 0 {
                    row.push(None);
                    continue;
                }
                let len = len as usize;
                if rest.len() < p + len {
                    complete = false;
                    break;
                }
                row.push(Some(rest[p..p + len].to_vec()));
                p += len;
            }
            if !complete {
                break;
            }
            pos += p;
            self.line += 1;
            self.push_row(row)?;
        }
        self.buf.drain(..pos);
        if at_end && !self.buf.is_empty() {
            return Err(self.bad("unexpected end of binary COPY data".into()));
        }
        Ok(())
    }

    /// Converts parsed rows to the table's columns and writes them (all of them at the end).
    fn flush(&mut self, all: bool) -> Result<()> {
        while self.rows.len() >= BATCH_ROWS || (all && !self.rows.is_empty()) {
            let n = self.rows.len().min(BATCH_ROWS);
            let rows: Vec<_> = self.rows.drain(..n).collect();
            let batch = self.batch(&rows)?;
            self.target.writer.write(&batch)?;
        }
        Ok(())
    }

    fn batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let schema = self.target.table_schema.clone();
        let first_line = self.line.saturating_sub((self.rows.len() + rows.len()) as u64) + 1;
        let mut columns: Vec<ArrayRef> =
            schema.fields().iter().map(|f| new_null_array(f.data_type(), rows.len())).collect();
        let format = if self.target.format == CopyFormat::Binary { FieldFormat::Binary } else { FieldFormat::Text };
        for (data_col, &table_col) in self.target.columns.iter().enumerate() {
            let field = schema.field(table_col);
            let dt = field.data_type();
            let array: ArrayRef = if format == FieldFormat::Text
                && matches!(dt, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
            {
                let values = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match &r[data_col] {
                        None => Ok(None),
                        Some(b) => std::str::from_utf8(b).map(Some).map_err(|_| {
                            self.value_error(
                                first_line + i as u64,
                                field.name(),
                                "invalid byte sequence for encoding \"UTF8\"",
                            )
                        }),
                    })
                    .collect::<Result<Vec<Option<&str>>>>()?;
                datafusion::arrow::compute::cast(&(std::sync::Arc::new(StringArray::from(values)) as ArrayRef), dt)?
            } else {
                let wire = params::pg_type_for(Some(dt));
                let values = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        params::decode(data_col, r[data_col].as_deref(), format, Some(&wire)).map_err(|_| {
                            let shown = r[data_col]
                                .as_deref()
                                .map(|b| String::from_utf8_lossy(b).to_string())
                                .unwrap_or_default();
                            let what = if format == FieldFormat::Binary {
                                format!("incorrect binary data format for type {}", wire.name())
                            } else {
                                format!("invalid input syntax for type {}: \"{shown}\"", wire.name())
                            };
                            self.value_error(first_line + i as u64, field.name(), &what)
                        })
                    })
                    .collect::<Result<Vec<ScalarValue>>>()?;
                let array = ScalarValue::iter_to_array(values)?;
                if array.data_type() == dt { array } else { datafusion::arrow::compute::cast(&array, dt)? }
            };
            columns[table_col] = array;
        }
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    fn value_error(&self, line: u64, column: &str, what: &str) -> Error {
        Error::sql(
            SqlState::InvalidTextRepresentation,
            format!("{what} (COPY {}, line {line}, column {column})", self.target.table),
        )
    }
}

/// The fields of one text-format line: split at unescaped delimiters; a field equal to the
/// NULL marker is NULL, others are unescaped.
fn text_fields(line: &[u8], delimiter: u8, null: &str) -> Row {
    let mut raw_fields = vec![];
    let mut field_start = 0;
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' {
            i += 2;
            continue;
        }
        if line[i] == delimiter {
            raw_fields.push(&line[field_start..i]);
            field_start = i + 1;
        }
        i += 1;
    }
    raw_fields.push(&line[field_start.min(line.len())..]);
    raw_fields.into_iter().map(|f| if f == null.as_bytes() { None } else { Some(unescape_text(f)) }).collect()
}

fn unescape_text(f: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        if c != b'\\' || i + 1 >= f.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = f[i + 1];
        i += 2;
        match n {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (n - b'0') as u32;
                let mut k = 0;
                while k < 2 && i < f.len() && (b'0'..=b'7').contains(&f[i]) {
                    v = v * 8 + (f[i] - b'0') as u32;
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < f.len() && f[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < f.len() && f[i].is_ascii_hexdigit() {
                    v = v * 16 + (f[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// One CSV record from the start of `buf`: its fields and the bytes it used (with its line
/// end), or None when the record is not complete yet.
#[allow(clippy::type_complexity)]
/// Where the CSV record at the start of `buf` ends (the index of its line end outside quotes),
/// scanning from `from`, where a previous scan stopped `in_quotes` or not. Returns the end if
/// found, and where the scan stopped with the quote state there.
fn csv_record_end(buf: &[u8], from: usize, mut in_quotes: bool, quote: u8, escape: u8) -> (Option<usize>, usize, bool) {
    let mut i = from.min(buf.len());
    while i < buf.len() {
        let c = buf[i];
        if in_quotes && c == escape && escape != quote {
            if i + 1 == buf.len() {
                // What it escapes has not arrived: look at it again with the next message.
                return (None, i, in_quotes);
            }
            i += 2;
            continue;
        }
        if c == quote {
            // A doubled quote (the default escape) toggles twice: no change, as it should be.
            in_quotes = !in_quotes;
        } else if !in_quotes && (c == b'\n' || c == b'\r') {
            return (Some(i), i, in_quotes);
        }
        i += 1;
    }
    (None, i, in_quotes)
}

fn csv_record(
    buf: &[u8],
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: &str,
    at_end: bool,
) -> std::result::Result<Option<(Row, usize)>, String> {
    let mut fields = vec![];
    let mut field = vec![];
    let mut quoted = false;
    let mut in_quotes = false;
    let mut i = 0;
    let finish = |field: &mut Vec<u8>, quoted: bool, fields: &mut Row| {
        let v = std::mem::take(field);
        fields.push(if !quoted && v == null.as_bytes() { None } else { Some(v) });
    };
    while i < buf.len() {
        let c = buf[i];
        if in_quotes {
            if c == escape && escape != quote && i + 1 < buf.len() && (buf[i + 1] == quote || buf[i + 1] == escape) {
                field.push(buf[i + 1]);
                i += 2;
                continue;
            }
            if c == quote {
                if escape == quote && i + 1 < buf.len() && buf[i + 1] == quote {
                    field.push(quote);
                    i += 2;
                    continue;
                }
                if escape == quote && i + 1 == buf.len() && !at_end {
                    return Ok(None);
                }
                in_quotes = false;
                i += 1;
                continue;
            }
            field.push(c);
            i += 1;
            continue;
        }
        if c == quote {
            in_quotes = true;
            quoted = true;
        } else if c == delimiter {
            finish(&mut field, quoted, &mut fields);
            quoted = false;
        } else if c == b'\n' || c == b'\r' {
            let mut used = i + 1;
            if c == b'\r' {
                if used < buf.len() && buf[used] == b'\n' {
                    used += 1;
                } else if used == buf.len() && !at_end {
                    return Ok(None);
                }
            }
            finish(&mut field, quoted, &mut fields);
            return Ok(Some((fields, used)));
        } else {
            field.push(c);
        }
        i += 1;
    }
    if !at_end {
        return Ok(None);
    }
    if in_quotes {
        return Err("unterminated CSV quoted field".into());
    }
    finish(&mut field, quoted, &mut fields);
    Ok(Some((fields, buf.len())))
}

/// What a COPY TO STDOUT sends before its rows: the binary signature, or the CSV header line.
fn copy_out_header(format: &CopyFormat, schema: &datafusion::arrow::datatypes::Schema) -> Option<CopyData> {
    let mut prefix = BytesMut::new();
    match format {
        CopyFormat::Binary => {
            prefix.put_slice(BINARY_SIGNATURE);
            prefix.put_i32(0);
            prefix.put_i32(0);
        }
        CopyFormat::Csv { header: true, delimiter, quote, .. } => {
            let names: Vec<String> =
                schema.fields().iter().map(|f| csv_value(f.name(), *delimiter, *quote, "")).collect();
            prefix.put_slice(names.join(&(*delimiter as char).to_string()).as_bytes());
            prefix.put_u8(b'\n');
        }
        _ => return None,
    }
    Some(CopyData::new(prefix.freeze()))
}

/// The CopyData messages of a COPY TO STDOUT: the header (binary signature or CSV header
/// line), if any, then one per row. The binary trailer is left to the caller.
pub fn copy_out_stream(out: CopyOut) -> impl Stream<Item = PgWireResult<CopyData>> + Send {
    let CopyOut { format, rows } = out;
    let header = copy_out_header(&format, &rows.schema());
    let rows = rows.flat_map(move |batch| {
        let encoded = batch.map_err(|e| super::pg_wire_error(&Error::DataFusion(e))).and_then(|b| {
            encode_rows(&b, &format, BytesMut::new())
                .map_err(|e| super::pg_wire_error(&Error::Store(format!("cannot encode COPY row: {}", e.0))))
        });
        match encoded {
            Ok(rows) => futures::stream::iter(rows.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => futures::stream::iter(vec![Err(e)]),
        }
    });
    futures::stream::iter(header.map(Ok)).chain(rows)
}

/// Sends a COPY TO STDOUT itself: CopyOutResponse, the header, a CopyData per row, the binary
/// trailer, CopyDone; returns the tag (`COPY n`) for the caller's CommandComplete. An error
/// while rows stream is returned, for the caller to send as an ErrorResponse, as PostgreSQL
/// does (pgwire's own CopyOut path would send the client a CopyFail, which clients reject).
pub async fn send_copy_out<C>(client: &mut C, out: CopyOut) -> PgWireResult<pgwire::api::results::Tag>
where
    C: futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send,
    C::Error: std::fmt::Debug,
    pgwire::error::PgWireError: From<C::Error>,
{
    use futures::SinkExt;
    use pgwire::messages::PgWireBackendMessage as M;
    let columns = out.rows.schema().fields().len();
    let format = out.format.code();
    let binary = out.format == CopyFormat::Binary;
    let has_header = copy_out_header(&out.format, &out.rows.schema()).is_some();
    let response =
        pgwire::messages::copy::CopyOutResponse::new(format, columns as i16, vec![i16::from(format); columns]);
    client.send(M::CopyOutResponse(response)).await?;
    let stream = copy_out_stream(out);
    futures::pin_mut!(stream);
    let mut messages = 0usize;
    while let Some(data) = stream.next().await {
        client.feed(M::CopyData(data?)).await?;
        messages += 1;
    }
    if binary {
        client.feed(M::CopyData(CopyData::new(bytes::Bytes::from_static(&[0xff, 0xff])))).await?;
    }
    client.send(M::CopyDone(pgwire::messages::copy::CopyDone::new())).await?;
    let rows = messages - usize::from(has_header);
    Ok(pgwire::api::results::Tag::new("COPY").with_rows(rows))
}

/// One row of the text or CSV format: values between delimiters, NULL as `null`, each
/// non-null value's text written by `value`, then the line end.
#[allow(clippy::too_many_arguments)]
fn delimited_row(
    columns: &[ArrayRef],
    nulls: &[Option<datafusion::arrow::buffer::NullBuffer>],
    row: usize,
    delimiter: u8,
    null: &str,
    buf: &mut BytesMut,
    text: &mut String,
    value: &mut dyn FnMut(&str, &mut BytesMut),
) -> Result<(), EncodeError> {
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            buf.put_u8(delimiter);
        }
        if nulls[i].as_ref().is_some_and(|n| n.is_null(row)) {
            buf.put_slice(null.as_bytes());
            continue;
        }
        text.clear();
        write_text(c, row, text)?;
        value(text, buf);
    }
    buf.put_u8(b'\n');
    Ok(())
}

fn csv_value(v: &str, delimiter: u8, quote: u8, null: &str) -> String {
    let needs = v.is_empty() && null.is_empty()
        || v == null
        || v.bytes().any(|b| b == delimiter || b == quote || b == b'\n' || b == b'\r');
    if needs {
        let q = quote as char;
        format!("{q}{}{q}", v.replace(q, &format!("{q}{q}")))
    } else {
        v.to_string()
    }
}

fn encode_rows(batch: &RecordBatch, format: &CopyFormat, mut prefix: BytesMut) -> Result<Vec<CopyData>, EncodeError> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Dictionary(_, v) => {
                datafusion::arrow::compute::cast(c, v).map_err(|e| EncodeError(e.to_string()))
            }
            _ => Ok(c.clone()),
        })
        .collect::<Result<_, _>>()?;
    let nulls: Vec<_> = columns.iter().map(|c| c.logical_nulls()).collect();
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut text = String::new();
    for row in 0..batch.num_rows() {
        let mut buf = std::mem::take(&mut prefix);
        match format {
            CopyFormat::Binary => {
                buf.put_i16(columns.len() as i16);
                for (i, c) in columns.iter().enumerate() {
                    if nulls[i].as_ref().is_some_and(|n| n.is_null(row)) {
                        buf.put_i32(-1);
                        continue;
                    }
                    let at = buf.len();
                    buf.put_i32(0);
                    write_binary(c, row, &mut buf)?;
                    let len = (buf.len() - at - 4) as i32;
                    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
            CopyFormat::Text { delimiter, null } => {
                delimited_row(&columns, &nulls, row, *delimiter, null, &mut buf, &mut text, &mut |value, buf| {
                    for b in value.bytes() {
                        match b {
                            b'\\' => buf.put_slice(b"\\\\"),
                            b'\n' => buf.put_slice(b"\\n"),
                            b'\r' => buf.put_slice(b"\\r"),
                            b'\t' if *delimiter == b'\t' => buf.put_slice(b"\\t"),
                            d if d == *delimiter => {
                                buf.put_u8(b'\\');
                                buf.put_u8(d);
                            }
                            other => buf.put_u8(other),
                        }
                    }
                })?;
            }
            CopyFormat::Csv { delimiter, quote, null, .. } => {
                delimited_row(&columns, &nulls, row, *delimiter, null, &mut buf, &mut text, &mut |value, buf| {
                    buf.put_slice(csv_value(value, *delimiter, *quote, null).as_bytes())
                })?;
            }
        }
        out.push(CopyData::new(buf.freeze()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_split_at_unescaped_delimiters() {
        let f = text_fields(b"a\\tb\tc\\\\\t\\N\t", b'\t', "\\N");
        assert_eq!(f, vec![Some(b"a\tb".to_vec()), Some(b"c\\".to_vec()), None, Some(vec![])]);
        assert_eq!(unescape_text(b"\\101\\x42\\n"), b"AB\n");
    }

    #[test]
    fn csv_record_ends_are_found_one_byte_at_a_time_as_at_once() {
        for (buf, escape) in [
            (&b"1,\"a,\"\"b\"\"\nc\",,\"\"\n2,x"[..], b'"'),
            (&b"\"x\\\"\n\\\\\",y\r\nz"[..], b'\\'),
            (&b"plain,line\n"[..], b'"'),
        ] {
            let whole = csv_record_end(buf, 0, false, b'"', escape).0;
            let (mut scanned, mut in_quotes) = (0, false);
            let mut found = None;
            for n in 1..=buf.len() {
                let (end, s, q) = csv_record_end(&buf[..n], scanned, in_quotes, b'"', escape);
                (scanned, in_quotes) = (s, q);
                if end.is_some() {
                    found = end;
                    break;
                }
            }
            assert_eq!(found, whole, "{}", String::from_utf8_lossy(buf));
            let parsed = csv_record(buf, b',', b'"', escape, "", true).expect("ok").expect("a record");
            // The parser ends the same record there (a CR LF is one line end).
            let end = whole.expect("a line end");
            assert!(
                parsed.1 == end + 1 || (buf[end] == b'\r' && parsed.1 == end + 2),
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn csv_records_with_quotes_newlines_and_nulls() {
        let buf = b"1,\"a,\"\"b\"\"\nc\",,\"\"\n2,x";
        let (r, used) = csv_record(buf, b',', b'"', b'"', "", false).expect("ok").expect("complete");
        assert_eq!(r, vec![Some(b"1".to_vec()), Some(b"a,\"b\"\nc".to_vec()), None, Some(vec![])]);
        assert!(csv_record(&buf[used..], b',', b'"', b'"', "", false).expect("ok").is_none(), "no line end yet");
        let (r, _) = csv_record(&buf[used..], b',', b'"', b'"', "", true).expect("ok").expect("at end");
        assert_eq!(r, vec![Some(b"2".to_vec()), Some(b"x".to_vec())]);
        assert!(csv_record(b"\"open", b',', b'"', b'"', "", true).is_err());
    }

    #[test]
    fn csv_values_are_quoted_when_needed() {
        assert_eq!(csv_value("plain", b',', b'"', ""), "plain");
        assert_eq!(csv_value("a,b", b',', b'"', ""), "\"a,b\"");
        assert_eq!(csv_value("", b',', b'"', ""), "\"\"", "an empty string is not NULL");
        assert_eq!(csv_value("say \"hi\"", b',', b'"', ""), "\"say \"\"hi\"\"\"");
    }
}
