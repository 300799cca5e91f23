//! A recording's events as stored (`recording_chunks.data`) and as served (asciicast v2).
//!
//! The gateway relays bulk output at tens of MB/s, so the recorder stores each event's bytes
//! as they came, behind a 13-byte frame, and leaves the JSON to whoever reads the recording:
//! written as asciicast text, a NUL of `/dev/zero` was six bytes of JSON to escape, send and
//! compress (bench/gateway.sh). One event is
//!
//! ```text
//! microseconds since the recording started: u64, big-endian
//! kind: one byte, b'o' (output), b'i' (input) or b'r' (resize, data "COLSxROWS"),
//!       or b'z' (packed: data is an LZ4 block of further frames, none of them packed)
//! length of data: u32, big-endian
//! data: the bytes; whole UTF-8 characters (the recorder joins one split across reads)
//! ```
//!
//! A packed frame holds the uncompressed length as a u32 (little-endian, as `lz4_flex`
//! writes it) and then the block. The recorder packs a chunk of compressible output (see
//! [`Frames::pack`]), so that PostgreSQL, which every instance shares, stores and logs a
//! fraction of it; random bytes are left as they came.
//!
//! Big-endian, because PostgreSQL's `int8send`/`int4send` write that (the migration that
//! converted the earlier asciicast text builds the same frames).

use std::fmt;

use bytes::Bytes;

/// Bytes of a frame before its data.
pub const FRAME: usize = 13;

/// A packed frame's contents are at most this long once unpacked: a chunk is about 1 MiB.
pub const MAX_UNPACKED: usize = 64 * 1024 * 1024;

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// What the target sent to the user's terminal.
    Output,
    /// What the user typed.
    Input,
    /// The user's terminal changed size.
    Resize,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Output => b'o',
            Kind::Input => b'i',
            Kind::Resize => b'r',
        }
    }

    fn code(self) -> &'static str {
        match self {
            Kind::Output => "o",
            Kind::Input => "i",
            Kind::Resize => "r",
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'o' => Some(Kind::Output),
            b'i' => Some(Kind::Input),
            b'r' => Some(Kind::Resize),
            _ => None,
        }
    }
}

/// Appends one event to `chunk`: the frames' plain form, which tests compare [`Frames`] with.
#[cfg(test)]
pub fn push(chunk: &mut Vec<u8>, micros: u64, kind: Kind, data: &[u8]) {
    // A read is at most a packet (32 KiB): the length always fits.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let data = &data[..len as usize];
    chunk.reserve(FRAME + data.len());
    chunk.extend_from_slice(&micros.to_be_bytes());
    chunk.push(kind.byte());
    chunk.extend_from_slice(&len.to_be_bytes());
    chunk.extend_from_slice(data);
}

/// The frames of a chunk as the recorder gathers them: frame headers and short reads are
/// copied into one small buffer, while a long read is kept as the shared buffer it arrived in
/// (the one relayed to the user), so bulk output is copied once on its way to PostgreSQL:
/// into the statement sent (bench/gateway.sh; each copy of a bulk transfer cost the gateway
/// about a tenth of its CPU).
#[derive(Debug, Default)]
pub struct Frames {
    /// Sealed pieces, in order.
    pieces: Vec<Bytes>,
    /// The piece being filled, after `pieces`.
    small: Vec<u8>,
    len: usize,
}

/// Reads at least this long are shared rather than copied.
const SHARED_FROM: usize = 512;

impl Frames {
    /// Appends one event whose data is `head` followed by `data`. The head is copied: a few
    /// bytes (the start of a character split across reads, a short read, a terminal size);
    /// `data` is kept as it is when it is long.
    pub fn push(&mut self, micros: u64, kind: Kind, head: &[u8], data: Bytes) {
        // A read is at most a packet (32 KiB): the length always fits.
        let len = u32::try_from(head.len() + data.len()).unwrap_or(u32::MAX);
        let data = data.slice(..(len as usize).saturating_sub(head.len()));
        self.small.extend_from_slice(&micros.to_be_bytes());
        self.small.push(kind.byte());
        self.small.extend_from_slice(&len.to_be_bytes());
        self.small.extend_from_slice(head);
        if data.len() >= SHARED_FROM {
            self.seal();
            self.pieces.push(data);
        } else {
            self.small.extend_from_slice(&data);
        }
        self.len += FRAME + len as usize;
    }

    fn seal(&mut self) {
        if !self.small.is_empty() {
            let small = std::mem::take(&mut self.small);
            self.pieces.push(Bytes::from(small));
        }
    }

    /// The frames' length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, piece by piece, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces
            .iter()
            .map(|piece| &piece[..])
            .chain(std::iter::once(&self.small[..]))
    }

    /// Appends the first `max` bytes (all of them when shorter) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>, max: usize) {
        let mut left = max.min(self.len);
        out.reserve(left);
        for piece in self.pieces() {
            if left == 0 {
                break;
            }
            let take = piece.len().min(left);
            out.extend_from_slice(&piece[..take]);
            left -= take;
        }
    }

    /// The frames as one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out, usize::MAX);
        out
    }

    /// The frames as one packed frame, when they are large enough and compress well;
    /// `None`: store them as they are. Incompressible bytes cost one try of the first
    /// [`SAMPLE`] bytes; only frames that pass it are gathered into one buffer.
    pub fn pack(&self) -> Option<Vec<u8>> {
        if !packable_size(self.len) {
            return None;
        }
        let mut sample = Vec::new();
        self.write_to(&mut sample, SAMPLE);
        if !worth_packing(&sample) {
            return None;
        }
        pack_whole(&self.to_vec())
    }
}

/// A stored chunk that does not parse: cut short, or an unknown kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Where in the chunk the bad frame starts.
    pub at: usize,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed recording chunk at byte {}", self.at)
    }
}

impl std::error::Error for Malformed {}

/// Appends the asciicast v2 event lines of `chunk` to `out`: `[seconds, "o", "text"]` and a
/// newline each. Bytes that are not UTF-8 become U+FFFD, as a terminal shows them.
pub fn render(chunk: &[u8], out: &mut String) -> Result<(), Malformed> {
    render_frames(chunk, out, true)
}

/// [`render`], where packed frames are allowed only at the top (`unpack`).
fn render_frames(chunk: &[u8], out: &mut String, unpack: bool) -> Result<(), Malformed> {
    let mut at = 0;
    while at < chunk.len() {
        let bad = || Malformed { at };
        let frame: &[u8; FRAME] = chunk
            .get(at..at + FRAME)
            .and_then(|f| f.try_into().ok())
            .ok_or_else(bad)?;
        let [m0, m1, m2, m3, m4, m5, m6, m7, kind, l0, l1, l2, l3] = *frame;
        let micros = u64::from_be_bytes([m0, m1, m2, m3, m4, m5, m6, m7]);
        let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        let data = chunk.get(at + FRAME..at + FRAME + len).ok_or_else(bad)?;
        if kind == PACKED && unpack {
            let inner = unpacked(data).ok_or_else(bad)?;
            render_frames(&inner, out, false).map_err(|_| bad())?;
            at += FRAME + len;
            continue;
        }
        let kind = Kind::from_byte(kind).ok_or_else(bad)?;
        let line = (
            micros as f64 / 1e6,
            kind.code(),
            String::from_utf8_lossy(data),
        );
        // Serializing a float, a str and a str cannot fail.
        if let Ok(line) = serde_json::to_string(&line) {
            out.push_str(&line);
            out.push('\n');
        }
        at += FRAME + len;
    }
    Ok(())
}

/// The kind byte of a packed frame.
const PACKED: u8 = b'z';

/// Compressed output must come to at most this share of the original (in eighths) to be
/// kept packed: below that, unpacking on every read is not worth it.
const WORTH_PACKING: usize = 6;
/// How much of a chunk is tried first: random bytes are given up on after this much.
const SAMPLE: usize = 64 * 1024;
/// Smaller chunks (interactive use) are stored as they are: PostgreSQL does not compress
/// values this small either, and they cost little.
const MIN_PACKED: usize = 8 * 1024;

/// [`Frames::pack`] of frames in one buffer (as [`push`] writes them).
#[cfg(test)]
pub fn pack(chunk: &[u8]) -> Option<Vec<u8>> {
    if !packable_size(chunk.len()) || !worth_packing(&chunk[..chunk.len().min(SAMPLE)]) {
        return None;
    }
    pack_whole(chunk)
}

fn packable_size(len: usize) -> bool {
    (MIN_PACKED..=MAX_UNPACKED).contains(&len)
}

/// Whether the start of a chunk compresses well enough to try the whole.
fn worth_packing(sample: &[u8]) -> bool {
    lz4_flex::block::compress(sample).len() * 8 <= sample.len() * WORTH_PACKING
}

fn pack_whole(chunk: &[u8]) -> Option<Vec<u8>> {
    let block = lz4_flex::block::compress_prepend_size(chunk);
    if block.len() * 8 > chunk.len() * WORTH_PACKING {
        return None;
    }
    packed_frame(&block)
}

/// A packed frame around `block` (the length, then the LZ4 block).
fn packed_frame(block: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(block.len()).ok()?;
    let mut framed = Vec::with_capacity(FRAME + block.len());
    framed.extend_from_slice(&0u64.to_be_bytes());
    framed.push(PACKED);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(block);
    Some(framed)
}

/// A packed frame's data unpacked; `None` when it claims more than [`MAX_UNPACKED`] or does
/// not decompress to what it claims.
fn unpacked(data: &[u8]) -> Option<Vec<u8>> {
    let (size, block) = data.split_first_chunk::<4>()?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > MAX_UNPACKED {
        return None;
    }
    let inner = lz4_flex::block::decompress(block, size).ok()?;
    (inner.len() == size).then_some(inner)
}

/// How many bytes at the end of `bytes` start a UTF-8 character that is not complete yet.
pub fn incomplete_suffix(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue;
        }
        let needed = match b {
            0b1100_0000..=0b1101_1111 => 2,
            0b1110_0000..=0b1110_1111 => 3,
            0b1111_0000..=0b1111_0111 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// Whether output looks like binary data rather than text for a terminal: a NUL, or more
/// than one byte in sixteen that is not UTF-8. Binary output stays in the recording but not
/// in its searchable text (random bytes are mostly "words" nobody searches for, and cost
/// the full-text index the most).
pub fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return true;
    }
    let invalid: usize = bytes.utf8_chunks().map(|c| c.invalid().len()).sum();
    invalid * 16 > bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(chunk: &[u8]) -> String {
        let mut out = String::new();
        render(chunk, &mut out).unwrap();
        out
    }

    fn chunk_of(lines: usize, data: &[u8]) -> Vec<u8> {
        let mut chunk = Vec::new();
        for n in 0..lines {
            push(&mut chunk, n as u64 * 1000, Kind::Output, data);
        }
        chunk
    }

    #[test]
    fn a_compressible_chunk_is_packed_and_renders_the_same() {
        let chunk = chunk_of(400, b"drwxr-xr-x 2 root root 4096 Dec  1 09:00 etc\r\n");
        let packed = pack(&chunk).expect("text this repetitive packs");
        assert!(
            packed.len() * 10 < chunk.len(),
            "{} of {}",
            packed.len(),
            chunk.len()
        );
        assert_eq!(rendered(&packed), rendered(&chunk));
        // Packed and plain chunks follow one another in a recording.
        let mut both = packed.clone();
        both.extend_from_slice(&chunk_of(1, b"after"));
        assert!(rendered(&both).ends_with("[0.0,\"o\",\"after\"]\n"));
    }

    #[test]
    fn small_or_incompressible_chunks_are_stored_as_they_are() {
        assert_eq!(pack(&chunk_of(2, b"$ ls\r\n")), None, "interactive use");
        // Bytes from a generator with no pattern lz4 can find.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(pack(&chunk_of(1, &noise)), None);
    }

    #[test]
    fn frames_gathered_in_pieces_are_the_frames_push_writes() {
        let long = b"total 48\r\n".repeat(300);
        let mut frames = Frames::default();
        let mut expected = Vec::new();
        for n in 0..40u64 {
            let (head, data): (&[u8], &[u8]) = match n % 3 {
                0 => (b"", b"$ "),
                1 => (&[0xe2], &long),
                _ => (b"ls\r\n", b""),
            };
            frames.push(n, Kind::Output, head, Bytes::copy_from_slice(data));
            push(&mut expected, n, Kind::Output, &[head, data].concat());
        }
        assert_eq!(frames.len(), expected.len());
        assert_eq!(frames.to_vec(), expected);
        let mut start = Vec::new();
        frames.write_to(&mut start, 5000);
        assert_eq!(start, expected[..5000]);
        assert_eq!(frames.pack(), pack(&expected));
        assert!(frames.pack().is_some(), "a listing this repetitive packs");

        let mut random = Frames::default();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..40_000)
            .map(|_| {
                // xorshift64: bytes no compressor finds a pattern in.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        random.push(0, Kind::Output, b"", Bytes::from(noise));
        assert_eq!(
            random.pack(),
            None,
            "incompressible output is stored as it came"
        );
        assert!(Frames::default().is_empty());
    }

    #[test]
    fn a_packed_frame_that_lies_is_refused_not_trusted() {
        let chunk = chunk_of(1000, b"hello\r\n");
        let mut packed = pack(&chunk).unwrap();
        // Claims 4 GiB once unpacked.
        packed[FRAME..FRAME + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            render(&packed, &mut String::new()),
            Err(Malformed { at: 0 })
        );
        // Packed inside packed is not a thing the recorder writes.
        let inner = pack(&chunk).unwrap();
        let twice = packed_frame(&lz4_flex::block::compress_prepend_size(&inner)).unwrap();
        assert_eq!(render(&twice, &mut String::new()), Err(Malformed { at: 0 }));
        // Cut short.
        let mut cut = pack(&chunk).unwrap();
        cut.truncate(cut.len() - 3);
        assert!(render(&cut, &mut String::new()).is_err());
    }

    #[test]
    fn events_render_as_the_asciicast_lines_the_recorder_wrote_before() {
        let mut chunk = Vec::new();
        push(&mut chunk, 0, Kind::Output, b"$ ls\r\n");
        push(&mut chunk, 1_250_000, Kind::Input, "é\"\\".as_bytes());
        push(&mut chunk, 2_000_001, Kind::Resize, b"120x40");
        push(&mut chunk, 3_500_000, Kind::Output, b"\0\x1b[1m");
        assert_eq!(
            rendered(&chunk),
            "[0.0,\"o\",\"$ ls\\r\\n\"]\n\
             [1.25,\"i\",\"é\\\"\\\\\"]\n\
             [2.000001,\"r\",\"120x40\"]\n\
             [3.5,\"o\",\"\\u0000\\u001b[1m\"]\n"
        );
        for line in rendered(&chunk).lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(event.as_array().unwrap().len(), 3, "{line}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_replacement_characters() {
        let mut chunk = Vec::new();
        push(&mut chunk, 7, Kind::Output, &[0xff, b'x']);
        assert_eq!(rendered(&chunk), "[7e-6,\"o\",\"\u{fffd}x\"]\n");
    }

    #[test]
    fn an_empty_chunk_renders_nothing_and_a_cut_one_is_refused() {
        assert_eq!(rendered(&[]), "");
        let mut chunk = Vec::new();
        push(&mut chunk, 1, Kind::Output, b"whole");
        push(&mut chunk, 2, Kind::Output, b"cut short");
        let cut = &chunk[..chunk.len() - 1];
        let mut out = String::new();
        assert_eq!(render(cut, &mut out), Err(Malformed { at: FRAME + 5 }));
        let mut unknown = chunk.clone();
        unknown[8] = b'x';
        assert_eq!(render(&unknown, &mut out), Err(Malformed { at: 0 }));
    }

    #[test]
    fn binary_output_is_told_from_text() {
        assert!(!looks_binary(b"plain text\r\n\x1b[32mgreen\x1b[0m"));
        assert!(!looks_binary("Grüße, €".as_bytes()));
        // A Latin-1 word in an otherwise readable line is still text.
        assert!(!looks_binary(b"caf\xe9 au lait, served with a croissant"));
        assert!(looks_binary(&[0u8; 64]));
        assert!(looks_binary(&[0xff, 0xfe, b'a', 0x80, 0x81, b'b']));
    }
}
