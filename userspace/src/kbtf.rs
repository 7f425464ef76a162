//! A small reader of the kernel's BTF (/sys/kernel/btf/vmlinux) that finds only what
//! it is asked for: one enum's names, or the offsets of a few struct members.
//!
//! Why not a full BTF library: parsing all ~130,000 types of vmlinux into objects and
//! name maps took a good part of `diagnose`'s time to verdict; one linear scan over the
//! type section with an index of type offsets is a few milliseconds.

use std::collections::HashMap;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is not valid BTF: {1}")]
    Format(String, &'static str),
    #[error("{0} not found in the kernel's BTF")]
    NotFound(String),
}

/// The raw BTF blob with an index of where each type starts.
pub struct KernelBtf {
    data: Vec<u8>,
    types_start: usize,
    types_end: usize,
    strs_start: usize,
    strs_end: usize,
    /// Type id (1-based) → byte offset of its `struct btf_type`; index 0 unused.
    offsets: Vec<u32>,
    source: String,
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Bytes after the 12-byte `struct btf_type` header for each kind.
fn trailer(kind: u32, vlen: usize) -> usize {
    match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        _ => 0,
    }
}

impl KernelBtf {
    pub fn open() -> Result<Self, BtfError> {
        Self::from_file(VMLINUX)
    }

    pub fn from_file(path: &str) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.to_string(),
            source,
        })?;
        Self::parse(data, path)
    }

    pub fn parse(data: Vec<u8>, source: &str) -> Result<Self, BtfError> {
        let bad = |why| BtfError::Format(source.to_string(), why);
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(bad("bad magic (only little-endian BTF is read)"));
        }
        let hdr_len = u32_at(&data, 4).ok_or_else(|| bad("short header"))? as usize;
        let type_off = u32_at(&data, 8).ok_or_else(|| bad("short header"))? as usize;
        let type_len = u32_at(&data, 12).ok_or_else(|| bad("short header"))? as usize;
        let str_off = u32_at(&data, 16).ok_or_else(|| bad("short header"))? as usize;
        let str_len = u32_at(&data, 20).ok_or_else(|| bad("short header"))? as usize;
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strs_start = hdr_len + str_off;
        let strs_end = strs_start + str_len;
        if types_end > data.len() || strs_end > data.len() {
            return Err(bad("sections beyond the end of the file"));
        }
        let mut offsets = vec![0u32];
        let mut at = types_start;
        while at + 12 <= types_end {
            offsets.push(at as u32);
            let info = u32_at(&data, at + 4).ok_or_else(|| bad("truncated type"))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            at += 12 + trailer(kind, vlen);
        }
        if at != types_end {
            return Err(bad("type section does not end on a type"));
        }
        Ok(Self {
            data,
            types_start,
            types_end,
            strs_start,
            strs_end,
            offsets,
            source: source.to_string(),
        })
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let start = self.strs_start + name_off as usize;
        if start >= self.strs_end {
            return b"";
        }
        let rest = &self.data[start..self.strs_end];
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    fn word(&self, at: usize) -> u32 {
        u32_at(&self.data, at).unwrap_or(0)
    }

    /// (name_off, kind, vlen, kind_flag, size_or_type) of type `id`.
    fn header(&self, id: u32) -> Option<(u32, u32, usize, bool, u32, usize)> {
        let at = *self.offsets.get(id as usize)? as usize;
        if at < self.types_start || at + 12 > self.types_end {
            return None;
        }
        let info = self.word(at + 4);
        Some((
            self.word(at),
            (info >> 24) & 0x1f,
            (info & 0xffff) as usize,
            info >> 31 == 1,
            self.word(at + 8),
            at,
        ))
    }

    /// Names of `enum NAME`: value → name.
    pub fn enum_values(&self, name: &str) -> Result<HashMap<u32, String>, BtfError> {
        for id in 1..self.offsets.len() as u32 {
            let Some((name_off, kind, vlen, _, _, at)) = self.header(id) else {
                continue;
            };
            if kind != KIND_ENUM || self.name(name_off) != name.as_bytes() {
                continue;
            }
            let mut out = HashMap::with_capacity(vlen);
            for i in 0..vlen {
                let m = at + 12 + 8 * i;
                let n = String::from_utf8_lossy(self.name(self.word(m))).into_owned();
                out.insert(self.word(m + 4), n);
            }
            return Ok(out);
        }
        Err(BtfError::NotFound(format!("enum {name}")))
    }

    /// Follows typedefs and qualifiers.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.header(id) {
                Some((
                    _,
                    KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG,
                    _,
                    _,
                    t,
                    _,
                )) => id = t,
                _ => return id,
            }
        }
        id
    }

    fn find_struct(&self, name: &str) -> Option<u32> {
        (1..self.offsets.len() as u32).find_map(|id| {
            let (name_off, kind, ..) = self.header(id)?;
            if self.name(name_off) != name.as_bytes() {
                return None;
            }
            match kind {
                KIND_STRUCT | KIND_UNION => Some(id),
                // `possible_net_t` is a typedef of an anonymous struct.
                KIND_TYPEDEF => {
                    let t = self.strip(id);
                    matches!(self.header(t), Some((_, KIND_STRUCT | KIND_UNION, ..))).then_some(t)
                }
                _ => None,
            }
        })
    }

    /// Bit offset of `member` in struct `id`, looking into anonymous structs/unions.
    fn member_bits(&self, id: u32, member: &str, depth: u32) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        let (_, kind, vlen, kflag, _, at) = self.header(id)?;
        if kind != KIND_STRUCT && kind != KIND_UNION {
            return None;
        }
        for i in 0..vlen {
            let m = at + 12 + 12 * i;
            let (name_off, ty, off) = (self.word(m), self.word(m + 4), self.word(m + 8));
            let bits = if kflag { off & 0x00ff_ffff } else { off };
            let n = self.name(name_off);
            if n == member.as_bytes() {
                return Some(bits);
            }
            if n.is_empty()
                && let Some(inner) = self.member_bits(self.strip(ty), member, depth + 1)
            {
                return Some(bits + inner);
            }
        }
        None
    }

    /// Byte offset of `member` in `struct st`.
    pub fn offset(&self, st: &str, member: &str) -> Result<u32, BtfError> {
        self.bit_offset(st, member).map(|b| b / 8)
    }

    /// Bit offset of `member` in `struct st` (for bitfields such as `sk_buff.ip_summed`).
    pub fn bit_offset(&self, st: &str, member: &str) -> Result<u32, BtfError> {
        let id = self
            .find_struct(st)
            .ok_or_else(|| BtfError::NotFound(format!("struct {st}")))?;
        self.member_bits(id, member, 0).ok_or_else(|| {
            BtfError::NotFound(format!("member {member} of struct {st} in {}", self.source))
        })
    }
}

/// `enum skb_drop_reason` of this kernel: value → lower-case name without prefix
/// (`SKB_DROP_REASON_NO_SOCKET` → `no_socket`).
pub fn drop_reasons(btf: &KernelBtf) -> Result<HashMap<u32, String>, BtfError> {
    Ok(btf
        .enum_values("skb_drop_reason")?
        .into_iter()
        .map(|(v, n)| {
            let short = n
                .strip_prefix("SKB_DROP_REASON_")
                .unwrap_or(&n)
                .to_lowercase();
            (v, short)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made BTF blob: int, struct s { int a; union { int b; }; }, enum e { X=7 }.
    fn blob() -> Vec<u8> {
        let strs = b"\0int\0s\0a\0b\0e\0X\0";
        let name = |s: &str| -> u32 {
            let pat = format!("\0{s}\0");
            strs.windows(pat.len())
                .position(|w| w == pat.as_bytes())
                .map_or(0, |p| p as u32 + 1)
        };
        let mut t: Vec<u8> = Vec::new();
        let mut w = |v: u32| t.extend_from_slice(&v.to_le_bytes());
        // 1: int
        w(name("int"));
        w(KIND_INT << 24);
        w(4);
        w(32);
        // 2: anonymous union { int b; } at bit 0
        w(0);
        w((KIND_UNION << 24) | 1);
        w(4);
        w(name("b"));
        w(1);
        w(0);
        // 3: struct s { int a; <anon> @32 }
        w(name("s"));
        w((KIND_STRUCT << 24) | 2);
        w(8);
        w(name("a"));
        w(1);
        w(0);
        w(0);
        w(2);
        w(32);
        // 4: enum e { X = 7 }
        w(name("e"));
        w((KIND_ENUM << 24) | 1);
        w(4);
        w(name("X"));
        w(7);
        let mut d = Vec::new();
        d.extend_from_slice(&MAGIC.to_le_bytes());
        d.push(1);
        d.push(0);
        d.extend_from_slice(&24u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&(t.len() as u32).to_le_bytes());
        d.extend_from_slice(&(t.len() as u32).to_le_bytes());
        d.extend_from_slice(&(strs.len() as u32).to_le_bytes());
        d.extend_from_slice(&t);
        d.extend_from_slice(strs);
        d
    }

    #[test]
    fn finds_members_through_anonymous_unions_and_enum_names() {
        let btf = KernelBtf::parse(blob(), "test").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(btf.offset("s", "a").ok(), Some(0));
        assert_eq!(btf.offset("s", "b").ok(), Some(4));
        assert!(btf.offset("s", "zz").is_err());
        let e = btf.enum_values("e").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.get(&7).map(String::as_str), Some("X"));
        assert!(btf.enum_values("nope").is_err());
    }

    /// On the running kernel: the members the programs read, and the drop reasons.
    #[test]
    fn reads_the_running_kernel() {
        let Ok(btf) = KernelBtf::open() else {
            panic!("{VMLINUX} must be readable (every supported kernel has it)");
        };
        let dev = btf
            .offset("sk_buff", "dev")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(dev < 256, "sk_buff.dev at {dev}");
        assert!(btf.offset("possible_net_t", "net").is_ok());
        assert!(btf.offset("net", "net_cookie").is_ok());
        let reasons = drop_reasons(&btf).unwrap_or_else(|e| panic!("{e}"));
        assert!(reasons.values().any(|r| r == "no_socket"), "{reasons:?}");
    }

    #[test]
    fn rejects_garbage() {
        assert!(KernelBtf::parse(vec![0; 10], "x").is_err());
        let mut b = blob();
        b.truncate(40);
        assert!(KernelBtf::parse(b, "x").is_err());
    }
}
