//! Facts about the running kernel from its BTF (/sys/kernel/btf/vmlinux): the struct
//! offsets the programs need, and the names of `enum skb_drop_reason`.

use std::collections::HashMap;

use btf_rs::{Btf, Type};
use vethscope_common::KernelOffsets;

use super::ProbeError;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn btf() -> Result<Btf, ProbeError> {
    Btf::from_file(VMLINUX).map_err(|e| ProbeError::Btf(format!("cannot read {VMLINUX}: {e}")))
}

/// Follows typedefs and qualifiers to the struct or union underneath.
fn strip(btf: &Btf, mut t: Type) -> Type {
    for _ in 0..16 {
        t = match &t {
            Type::Typedef(x) => btf.resolve_chained_type(x),
            Type::Const(x) | Type::Volatile(x) | Type::Restrict(x) => btf.resolve_chained_type(x),
            _ => return t,
        }
        .unwrap_or(Type::Void);
    }
    t
}

fn find_struct(btf: &Btf, name: &str) -> Result<btf_rs::Struct, ProbeError> {
    btf.resolve_types_by_name(name)
        .ok()
        .and_then(|types| {
            // `possible_net_t` is a typedef of an anonymous struct: look through it.
            types.into_iter().find_map(|t| match strip(btf, t) {
                Type::Struct(s) => Some(s),
                _ => None,
            })
        })
        .ok_or_else(|| ProbeError::Btf(format!("struct {name} not found in the kernel's BTF")))
}

/// Bit offset of member `name`, looking into anonymous structs and unions.
fn member_bits(btf: &Btf, st: &btf_rs::Struct, name: &str) -> Option<u32> {
    for m in &st.members {
        let mname = btf.resolve_name(m).unwrap_or_default();
        if mname == name {
            return Some(m.bit_offset());
        }
        if mname.is_empty()
            && let Ok(t) = btf.resolve_chained_type(m)
            && let Type::Struct(inner) | Type::Union(inner) = strip(btf, t)
            && let Some(off) = member_bits(btf, &inner, name)
        {
            return Some(m.bit_offset() + off);
        }
    }
    None
}

fn offset(btf: &Btf, st: &str, member: &str) -> Result<u32, ProbeError> {
    let s = find_struct(btf, st)?;
    member_bits(btf, &s, member)
        .map(|bits| bits / 8)
        .ok_or_else(|| {
            ProbeError::Btf(format!("struct {st} has no member {member} in this kernel"))
        })
}

pub fn kernel_offsets() -> Result<KernelOffsets, ProbeError> {
    let btf = btf()?;
    Ok(KernelOffsets {
        skb_dev: offset(&btf, "sk_buff", "dev")?,
        dev_ifindex: offset(&btf, "net_device", "ifindex")?,
        dev_nd_net: offset(&btf, "net_device", "nd_net")? + offset(&btf, "possible_net_t", "net")?,
        net_cookie: offset(&btf, "net", "net_cookie")?,
        valid: 1,
        skb_ip_summed_bits: member_bits(&btf, &find_struct(&btf, "sk_buff")?, "ip_summed")
            .ok_or_else(|| {
                ProbeError::Btf("struct sk_buff has no member ip_summed in this kernel".into())
            })?,
    })
}

/// `enum skb_drop_reason` of this kernel: value → lower-case name without prefix
/// (`SKB_DROP_REASON_NO_SOCKET` → `no_socket`).
pub fn drop_reasons() -> Result<HashMap<u32, String>, ProbeError> {
    let btf = btf()?;
    let types = btf
        .resolve_types_by_name("skb_drop_reason")
        .map_err(|e| ProbeError::Btf(format!("enum skb_drop_reason: {e}")))?;
    let mut out = HashMap::new();
    for t in types {
        if let Type::Enum(e) = t {
            for m in &e.members {
                let name = btf.resolve_name(m).unwrap_or_default();
                let short = name
                    .strip_prefix("SKB_DROP_REASON_")
                    .unwrap_or(&name)
                    .to_lowercase();
                out.insert(m.val(), short);
            }
        }
    }
    Ok(out)
}
