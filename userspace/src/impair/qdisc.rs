//! Rate (TBF) and delay/jitter (netem) as the root qdisc of an end: the option payloads
//! (`TCA_OPTIONS`) encoded as the kernel's `sch_tbf` / `sch_netem` read them.

use super::spec::{Impairment, Nanos, Rate};

/// Handle major of our root qdiscs (`7653:`), so we recognise them.
pub const HANDLE_MAJOR: u16 = 0x7653;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// The largest GSO packet on a veth plus headers: a burst at least this big means TBF
/// never has to segment a packet (which would recompute its checksums and hide a
/// corruption the eBPF program made).
const MIN_BURST: u64 = 70_000;

fn nla(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// `struct tc_ratespec` for a byte rate (values above u32 go in a RATE64 attribute).
fn ratespec(bytes_per_s: u64) -> [u8; 12] {
    let mut r = [0u8; 12];
    r[1] = TC_LINKLAYER_ETHERNET;
    r[8..12].copy_from_slice(&(bytes_per_s.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
    r
}

/// Burst and queue limit (bytes) for a TBF at `rate`: burst 10 ms of traffic (at least
/// [`MIN_BURST`]), queue 50 ms on top of it.
pub fn tbf_sizes(rate: Rate) -> (u32, u32) {
    let bytes = rate.0 / 8;
    let burst = (bytes / 100).max(MIN_BURST).min(u64::from(u32::MAX / 4));
    let limit = (burst + bytes / 20).max(2 * burst).min(u64::from(u32::MAX));
    (burst as u32, limit as u32)
}

/// `TCA_OPTIONS` of a TBF shaping to `rate`.
pub fn tbf_options(rate: Rate) -> Vec<u8> {
    let bytes = rate.0 / 8;
    let (burst, limit) = tbf_sizes(rate);
    // struct tc_tbf_qopt { rate, peakrate, limit, buffer, mtu }; `buffer` is replaced by
    // TCA_TBF_BURST, peak rate unused.
    let mut qopt = Vec::with_capacity(36);
    qopt.extend_from_slice(&ratespec(bytes));
    qopt.extend_from_slice(&[0u8; 12]);
    qopt.extend_from_slice(&limit.to_ne_bytes());
    qopt.extend_from_slice(&0u32.to_ne_bytes());
    qopt.extend_from_slice(&0u32.to_ne_bytes());
    let mut out = Vec::new();
    nla(&mut out, TCA_TBF_PARMS, &qopt);
    if bytes > u64::from(u32::MAX) {
        nla(&mut out, TCA_TBF_RATE64, &bytes.to_ne_bytes());
    }
    nla(&mut out, TCA_TBF_BURST, &burst.to_ne_bytes());
    out
}

/// `TCA_OPTIONS` of a netem with delay, jitter and (optionally) rate. Unlike other
/// qdiscs, netem's options start with a bare `struct tc_netem_qopt`, attributes after.
pub fn netem_options(delay: Nanos, jitter: Nanos, rate: Option<Rate>) -> Vec<u8> {
    // struct tc_netem_qopt { latency, limit, loss, gap, duplicate, jitter } — latency and
    // jitter in ticks, overridden by the 64-bit nanosecond attributes below.
    let mut out = Vec::new();
    for v in [0u32, 10_000, 0, 0, 0, 0] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    nla(
        &mut out,
        TCA_NETEM_LATENCY64,
        &(delay.0 as i64).to_ne_bytes(),
    );
    nla(
        &mut out,
        TCA_NETEM_JITTER64,
        &(jitter.0 as i64).to_ne_bytes(),
    );
    if let Some(r) = rate {
        let bytes = r.0 / 8;
        // struct tc_netem_rate { rate, packet_overhead, cell_size, cell_overhead }
        let mut spec = Vec::with_capacity(16);
        spec.extend_from_slice(&(bytes.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
        spec.extend_from_slice(&[0u8; 12]);
        nla(&mut out, TCA_NETEM_RATE, &spec);
        if bytes > u64::from(u32::MAX) {
            nla(&mut out, TCA_NETEM_RATE64, &bytes.to_ne_bytes());
        }
    }
    out
}

/// Which root qdisc an impairment needs, with its options: `None` when it needs none.
pub fn plan(imp: &Impairment) -> Option<(&'static str, Vec<u8>)> {
    if imp.needs_netem() {
        let delay = imp.delay.unwrap_or(Nanos(0));
        let jitter = imp.jitter.unwrap_or(Nanos(0));
        return Some(("netem", netem_options(delay, jitter, imp.rate)));
    }
    imp.rate.map(|r| ("tbf", tbf_options(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tbf_layout() {
        let o = tbf_options(Rate(100_000_000));
        // PARMS: 4 + 36, BURST: 4 + 4.
        assert_eq!(o.len(), 40 + 8);
        assert_eq!(u16::from_ne_bytes([o[0], o[1]]), 40);
        assert_eq!(u16::from_ne_bytes([o[2], o[3]]), TCA_TBF_PARMS);
        // rate in bytes/s at the end of the first ratespec.
        assert_eq!(
            u32::from_ne_bytes(o[12..16].try_into().unwrap()),
            12_500_000
        );
        assert_eq!(u16::from_ne_bytes([o[42], o[43]]), TCA_TBF_BURST);
        assert_eq!(tbf_sizes(Rate(100_000_000)).0, 125_000);
        assert_eq!(tbf_sizes(Rate(1_000_000)).0, 70_000);
        // 40gbit does not fit u32 bytes/s: RATE64 is added.
        assert_eq!(tbf_options(Rate(40_000_000_000)).len(), 40 + 12 + 8);
    }

    #[test]
    fn netem_layout() {
        let o = netem_options(Nanos(20_000_000), Nanos(2_000_000), None);
        assert_eq!(o.len(), 24 + 12 + 12);
        assert_eq!(u16::from_ne_bytes([o[26], o[27]]), TCA_NETEM_LATENCY64);
        assert_eq!(
            i64::from_ne_bytes(o[28..36].try_into().unwrap()),
            20_000_000
        );
    }
}
