//! The safetensors file format, read and written without a dependency.
//!
//! A file is an 8-byte little-endian header length `N`, `N` bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, …,
//! "__metadata__": {"key": "value"}}`, padded with spaces to a multiple of 8), then the tensors'
//! raw little-endian bytes, back to back. Offsets count from the start of the data. This is the
//! format of Hugging Face's `safetensors` (`safetensors.torch.save_file` / `load_file`), so files
//! written here load in PyTorch and the other way round.
//!
//! Reading checks everything before returning: the header length against the file, the JSON,
//! every entry's keys, dtype, shape and offsets, that `end − begin = numel · dtype size`, and
//! that the tensors tile the data exactly (no gap, overlap or trailing bytes). A bad file is an
//! error naming it, never a panic.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::json::{self, Json};
use super::CheckpointError;

/// The largest header accepted when reading (as the reference implementation does): a bigger
/// one is a corrupt length field, not a real header.
pub const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// An element type of the safetensors format. Every dtype of the format is recognised; F32 and
/// F64 are the ones typednet reads into and writes from tensors (the others can be carried
/// through [`SafeTensors`] as raw bytes, and are reported as unsupported where a model needs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs, non_camel_case_types)]
pub enum Dtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    const ALL: [Dtype; 15] = [
        Dtype::BOOL,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8_E5M2,
        Dtype::F8_E4M3,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    /// The name used in the header (`"F32"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// The dtype a header names, if it is one of the format's.
    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::BOOL | Dtype::U8 | Dtype::I8 | Dtype::F8_E5M2 | Dtype::F8_E4M3 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor of a file: its dtype, shape (row-major, `[]` for a scalar) and raw little-endian
/// bytes (`numel · dtype size` of them).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRecord {
    /// The element type.
    pub dtype: Dtype,
    /// The shape, outermost axis first (PyTorch's order).
    pub shape: Vec<usize>,
    /// The elements, little-endian, row-major.
    pub bytes: Vec<u8>,
}

impl TensorRecord {
    /// A record of `F32` values.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        TensorRecord {
            dtype: Dtype::F32,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// A record of `F64` values.
    pub fn from_f64(shape: Vec<usize>, values: &[f64]) -> Self {
        TensorRecord {
            dtype: Dtype::F64,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The number of elements (the product of the shape; 1 for a scalar), `None` on overflow.
    pub fn numel(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// The values, if the dtype is `F32`.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.dtype == Dtype::F32).then(|| {
            self.bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        })
    }

    /// The values, if the dtype is `F64`.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        (self.dtype == Dtype::F64).then(|| {
            self.bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()
        })
    }

    /// Why this record is not a well-formed tensor (byte count ≠ numel · dtype size), if it is not.
    fn check(&self) -> Result<(), String> {
        let expected = self
            .numel()
            .and_then(|n| n.checked_mul(self.dtype.size()))
            .ok_or_else(|| format!("shape {:?} has too many elements", self.shape))?;
        if expected != self.bytes.len() {
            return Err(format!(
                "{} × {:?} needs {expected} bytes, the record holds {}",
                self.dtype,
                self.shape,
                self.bytes.len()
            ));
        }
        Ok(())
    }
}

/// The contents of a safetensors file: named tensors (in data order when read) and the
/// string-to-string `__metadata__`.
///
/// The PyTorch equivalent is `safetensors.torch.save_file(tensors, path, metadata)` /
/// `safe_open(path, "pt")`.
///
/// ```
/// use typednet::checkpoint::safetensors::{SafeTensors, TensorRecord};
///
/// let mut file = SafeTensors::default();
/// file.tensors.push(("w".into(), TensorRecord::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0])));
/// file.metadata.insert("format".into(), "pt".into());
/// let bytes = file.to_bytes().unwrap();
/// let back = SafeTensors::from_bytes(&bytes).unwrap();
/// assert_eq!(back, file);
/// assert_eq!(back.get("w").unwrap().to_f32().unwrap(), [1.0, 2.0, 3.0, 4.0]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafeTensors {
    /// The tensors, by name.
    pub tensors: Vec<(String, TensorRecord)>,
    /// The `__metadata__` entries.
    pub metadata: BTreeMap<String, String>,
}

impl SafeTensors {
    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&TensorRecord> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }

    /// The header JSON (unpadded) and the total data length, after checking every record and
    /// that names are unique.
    fn header(&self) -> Result<(String, usize), String> {
        let mut out = String::from("{");
        let mut offset = 0usize;
        let mut seen = std::collections::BTreeSet::new();
        for (name, record) in &self.tensors {
            if name == "__metadata__" {
                return Err("a tensor may not be called __metadata__".into());
            }
            if !seen.insert(name.as_str()) {
                return Err(format!("two tensors are called {name:?}"));
            }
            record
                .check()
                .map_err(|e| format!("tensor {name:?}: {e}"))?;
            let end = offset + record.bytes.len();
            if out.len() > 1 {
                out.push(',');
            }
            json::write_string(&mut out, name);
            out.push_str(":{\"dtype\":");
            json::write_string(&mut out, record.dtype.name());
            out.push_str(",\"shape\":[");
            let dims: Vec<String> = record.shape.iter().map(|d| d.to_string()).collect();
            out.push_str(&dims.join(","));
            out.push_str(&format!("],\"data_offsets\":[{offset},{end}]}}"));
            offset = end;
        }
        if !self.metadata.is_empty() {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str("\"__metadata__\":{");
            for (i, (k, v)) in self.metadata.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_string(&mut out, k);
                out.push(':');
                json::write_string(&mut out, v);
            }
            out.push('}');
        }
        out.push('}');
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        while !out.len().is_multiple_of(8) {
            out.push(' ');
        }
        Ok((out, offset))
    }

    fn write_to(&self, out: &mut impl Write) -> Result<Result<(), std::io::Error>, String> {
        let (header, _) = self.header()?;
        Ok((|| {
            out.write_all(&(header.len() as u64).to_le_bytes())?;
            out.write_all(header.as_bytes())?;
            for (_, record) in &self.tensors {
                out.write_all(&record.bytes)?;
            }
            Ok(())
        })())
    }

    /// The file's bytes. Fails (naming the tensor) if a record's byte count does not match its
    /// shape and dtype, or if two tensors share a name.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes)?
            .expect("writing to a Vec cannot fail");
        Ok(bytes)
    }

    /// Parses and checks a whole file's bytes; the error says what is wrong and where.
    pub fn from_bytes(bytes: &[u8]) -> Result<SafeTensors, String> {
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .ok_or_else(|| {
                format!(
                    "the file is {} bytes, too short for the 8-byte header length",
                    bytes.len()
                )
            })?
            .try_into()
            .expect("8 bytes");
        let header_len = u64::from_le_bytes(len_bytes);
        let available = bytes.len() as u64 - 8;
        if header_len > MAX_HEADER_BYTES {
            return Err(format!(
                "the header length field says {header_len} bytes, more than the {MAX_HEADER_BYTES} allowed (a corrupt file?)"
            ));
        }
        if header_len > available {
            return Err(format!(
                "the header length field says {header_len} bytes, but only {available} follow it (a truncated file?)"
            ));
        }
        if header_len < 2 {
            return Err(format!(
                "the header is {header_len} bytes, too short for a JSON object"
            ));
        }
        let header_len = header_len as usize;
        let header = std::str::from_utf8(&bytes[8..8 + header_len])
            .map_err(|e| format!("the header is not UTF-8: {e}"))?;
        let data = &bytes[8 + header_len..];
        let Json::Object(entries) = json::parse(header)? else {
            return Err("the header is not a JSON object".into());
        };

        let mut metadata = BTreeMap::new();
        // (begin, end, name, dtype, shape)
        let mut spans: Vec<(usize, usize, String, Dtype, Vec<usize>)> = Vec::new();
        for (name, value) in entries {
            if name == "__metadata__" {
                let Json::Object(pairs) = value else {
                    return Err("__metadata__ is not an object".into());
                };
                for (k, v) in pairs {
                    let Json::Str(v) = v else {
                        return Err(format!("__metadata__ value of {k:?} is not a string"));
                    };
                    metadata.insert(k, v);
                }
                continue;
            }
            let (dtype, shape, begin, end) =
                parse_entry(value).map_err(|e| format!("tensor {name:?}: {e}"))?;
            spans.push((begin, end, name, dtype, shape));
        }

        spans.sort_by_key(|s| (s.0, s.1));
        let mut expected_begin = 0usize;
        let mut tensors = Vec::with_capacity(spans.len());
        for (begin, end, name, dtype, shape) in spans {
            if begin != expected_begin {
                return Err(format!(
                    "tensor {name:?} starts at data byte {begin}, expected {expected_begin} (tensors must be contiguous, without gaps or overlaps)"
                ));
            }
            let needed = shape
                .iter()
                .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
                .ok_or_else(|| format!("tensor {name:?}: shape {shape:?} is too large"))?;
            if end - begin != needed {
                return Err(format!(
                    "tensor {name:?}: {dtype} × {shape:?} needs {needed} bytes, data_offsets [{begin}, {end}] give {}",
                    end - begin
                ));
            }
            if end > data.len() {
                return Err(format!(
                    "tensor {name:?} ends at data byte {end}, but the file holds {} bytes of data (a truncated file?)",
                    data.len()
                ));
            }
            tensors.push((
                name,
                TensorRecord {
                    dtype,
                    shape,
                    bytes: data[begin..end].to_vec(),
                },
            ));
            expected_begin = end;
        }
        if expected_begin != data.len() {
            return Err(format!(
                "{} bytes of data after the last tensor (which ends at {expected_begin})",
                data.len() - expected_begin
            ));
        }
        Ok(SafeTensors { tensors, metadata })
    }

    /// Reads and checks the file at `path` (errors name the file).
    pub fn read(path: impl AsRef<Path>) -> Result<SafeTensors, CheckpointError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        SafeTensors::from_bytes(&bytes).map_err(|reason| CheckpointError::Format {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes the file at `path` atomically: the bytes go to a temporary file in the same
    /// directory, which is flushed to disk (`sync_all`) and then renamed over `path`, so a
    /// crash at any moment leaves either the old file or the new one, never a partial one.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let format_error = |reason| CheckpointError::Format {
            path: path.to_path_buf(),
            reason,
        };
        // Check the records before creating anything on disk.
        self.header().map_err(format_error)?;
        let temporary = temporary_path(path);
        let io_error = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let result = (|| {
            let file = File::create(&temporary)?;
            let mut writer = BufWriter::with_capacity(1 << 20, file);
            self.write_to(&mut writer).expect("header checked above")?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&temporary, path)
        })();
        if let Err(source) = result {
            let _ = std::fs::remove_file(&temporary);
            return Err(io_error(source));
        }
        // Make the rename itself durable. Directories cannot be opened (or synced) on every
        // platform; where they cannot, the rename is still atomic, only maybe not yet on disk.
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

/// `dir/.name.tmp.<pid>.<n>`: in the target's directory (a rename is atomic only within one
/// file system), unique per process and call so concurrent writers never share one.
fn temporary_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

fn as_usize(value: &Json, what: &str) -> Result<usize, String> {
    match value {
        Json::Int(i) => usize::try_from(*i).map_err(|_| format!("{what} {i} is too large")),
        _ => Err(format!("{what} is not an integer")),
    }
}

fn parse_entry(value: Json) -> Result<(Dtype, Vec<usize>, usize, usize), String> {
    let Json::Object(fields) = value else {
        return Err("the entry is not an object".into());
    };
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    for (key, value) in fields {
        match key.as_str() {
            "dtype" => {
                let Json::Str(name) = value else {
                    return Err("dtype is not a string".into());
                };
                dtype = Some(Dtype::from_name(&name).ok_or(format!("unknown dtype {name:?}"))?);
            }
            "shape" => {
                let Json::Array(dims) = value else {
                    return Err("shape is not an array".into());
                };
                shape = Some(
                    dims.iter()
                        .map(|d| as_usize(d, "a dimension"))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            "data_offsets" => {
                let Json::Array(pair) = value else {
                    return Err("data_offsets is not an array".into());
                };
                let [begin, end] = pair.as_slice() else {
                    return Err("data_offsets does not hold two numbers".into());
                };
                let (begin, end) = (as_usize(begin, "begin")?, as_usize(end, "end")?);
                if end < begin {
                    return Err(format!(
                        "data_offsets [{begin}, {end}] end before they begin"
                    ));
                }
                offsets = Some((begin, end));
            }
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    let dtype = dtype.ok_or("no dtype")?;
    let shape = shape.ok_or("no shape")?;
    let (begin, end) = offsets.ok_or("no data_offsets")?;
    Ok((dtype, shape, begin, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SafeTensors {
        let mut file = SafeTensors::default();
        file.tensors.push((
            "a.weight".into(),
            TensorRecord::from_f32(
                vec![2, 3],
                &[1.0, -2.0, 3.5, f32::MAX, f32::MIN_POSITIVE, -0.0],
            ),
        ));
        file.tensors.push((
            "a.bias".into(),
            TensorRecord::from_f64(vec![2], &[0.25, -1e300]),
        ));
        file.tensors.push((
            "scalar \"quoted\"".into(),
            TensorRecord::from_f64(vec![], &[7.0]),
        ));
        file.tensors
            .push(("empty".into(), TensorRecord::from_f32(vec![0, 4], &[])));
        file.tensors.push((
            "half".into(),
            TensorRecord {
                dtype: Dtype::F16,
                shape: vec![2],
                bytes: vec![0, 60, 0, 64],
            },
        ));
        file.metadata.insert("step".into(), "12".into());
        file.metadata.insert("note".into(), "é\n\"x\"".into());
        file
    }

    #[test]
    fn round_trip_keeps_every_byte() {
        let file = sample();
        let bytes = file.to_bytes().unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0, "header padded to a multiple of 8");
        let back = SafeTensors::from_bytes(&bytes).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.get("a.weight").unwrap().to_f32().unwrap()[3], f32::MAX);
        assert_eq!(
            back.get("a.bias").unwrap().to_f64().unwrap(),
            [0.25, -1e300]
        );
        assert!(back.get("a.bias").unwrap().to_f32().is_none());
    }

    /// The layout Hugging Face's writer produces (metadata first, names sorted, header padded
    /// with spaces), built by hand; files the reference implementation really wrote are read in
    /// `tests/checkpoint.rs` (fixtures from `tools/reference_safetensors.py`).
    #[test]
    fn reads_the_reference_layout() {
        let header =
            br#"{"__metadata__":{"k":"v"},"x":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
        let mut padded = header.to_vec();
        while !padded.len().is_multiple_of(8) {
            padded.push(b' ');
        }
        let mut bytes = (padded.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&padded);
        bytes.extend(1.0f32.to_le_bytes());
        bytes.extend(2.0f32.to_le_bytes());
        let file = SafeTensors::from_bytes(&bytes).unwrap();
        assert_eq!(file.get("x").unwrap().to_f32().unwrap(), [1.0, 2.0]);
        assert_eq!(file.get("x").unwrap().shape, [1, 2]);
        assert_eq!(file.metadata["k"], "v");
    }

    fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().to_bytes().unwrap();
        for len in 0..bytes.len() {
            assert!(
                SafeTensors::from_bytes(&bytes[..len]).is_err(),
                "accepted {len} bytes"
            );
        }
        // Flipping any single header byte either still parses (e.g. a space, a digit of a
        // name) or is an error; it never panics.
        for i in 0..bytes.len().min(400) {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 0x5a;
            let _ = SafeTensors::from_bytes(&corrupt);
        }
    }

    #[test]
    fn corrupt_headers_are_reported() {
        let cases: [(&str, &[u8], &str); 10] = [
            (
                r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                &[0; 4],
                "needs 8 bytes",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
                "starts at data byte 4",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                &[0; 8],
                "4 bytes of data after",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 4],
                "truncated",
            ),
            (
                r#"{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#,
                &[0; 4],
                "unknown dtype",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1]}}"#,
                &[0; 4],
                "no data_offsets",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
                &[0; 4],
                "end before",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}"#,
                &[0; 4],
                "unknown field",
            ),
            (r#"{"__metadata__":{"k":1}}"#, &[], "not a string"),
            (
                r#"{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#,
                &[0; 4],
                "too large",
            ),
        ];
        for (header, data, message) in cases {
            let err = SafeTensors::from_bytes(&with_header(header, data)).unwrap_err();
            assert!(err.contains(message), "{header}: {err}");
        }
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(SafeTensors::from_bytes(&huge)
            .unwrap_err()
            .contains("corrupt"));
        let mut long = 100u64.to_le_bytes().to_vec();
        long.extend_from_slice(b"{}");
        assert!(SafeTensors::from_bytes(&long)
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn writing_refuses_bad_records() {
        let mut file = sample();
        file.tensors[0].1.bytes.pop();
        assert!(file.to_bytes().unwrap_err().contains("a.weight"));
        let mut file = sample();
        file.tensors.push(file.tensors[0].clone());
        assert!(file.to_bytes().unwrap_err().contains("two tensors"));
    }

    #[test]
    fn files_are_written_atomically_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("typednet-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        sample().write(&path).unwrap();
        assert_eq!(SafeTensors::read(&path).unwrap(), sample());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.safetensors"]);

        std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{}").unwrap();
        let err = SafeTensors::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("model.safetensors") && err.contains("truncated"),
            "{err}"
        );
        let err = SafeTensors::read(dir.join("absent.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.safetensors"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
