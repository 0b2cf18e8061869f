//! The address plan: every group gets a contiguous, aligned block (its own `prefix`, or the
//! next free block of the base prefix in declaration order), and node `k` (1-based) of a
//! block gets the block's network address plus `k`. The network and broadcast addresses
//! of a block are never given to a node, so a block of `2^n` addresses holds `2^n - 2`.

use ipnet::Ipv4Net;

/// How many nodes fit in `prefix`.
pub fn capacity(prefix: Ipv4Net) -> u64 {
    (1u64 << (32 - prefix.prefix_len())).saturating_sub(2)
}

/// Why a group could not get its block: the group's index, the message and the fix.
pub type PlanError = (usize, String, String);

fn range(p: Ipv4Net) -> (u64, u64) {
    let start = u64::from(u32::from(p.network()));
    (start, start + (1u64 << (32 - p.prefix_len())))
}

/// Gives each group `(explicit prefix, node count)` its block within `base`.
/// Explicit prefixes are checked for size and overlap; the others are allocated around them.
pub fn allocate(
    base: Ipv4Net,
    groups: &[(Option<Ipv4Net>, usize)],
) -> Result<Vec<Ipv4Net>, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut taken: Vec<(u64, u64, usize)> = Vec::new();
    for (g, (prefix, count)) in groups.iter().enumerate() {
        let Some(prefix) = prefix else { continue };
        if (*count as u64) > capacity(*prefix) {
            errors.push((
                g,
                format!(
                    "prefix {prefix} holds {} nodes but the group has {count}",
                    capacity(*prefix)
                ),
                format!("use a prefix of length {} or shorter", block_len(*count)),
            ));
        }
        let (start, end) = range(*prefix);
        if let Some(&(_, _, other)) = taken.iter().find(|(s, e, _)| start < *e && *s < end) {
            errors.push((
                g,
                format!("prefix {prefix} overlaps the prefix of groups[{other}]"),
                "give every group a disjoint prefix, or leave `prefix` out to have one allocated"
                    .into(),
            ));
        }
        taken.push((start, end, g));
    }
    taken.sort_unstable();

    let (base_start, base_end) = range(base);
    let mut cursor = base_start;
    let mut blocks = Vec::with_capacity(groups.len());
    for (g, (prefix, count)) in groups.iter().enumerate() {
        if let Some(prefix) = prefix {
            blocks.push(*prefix);
            continue;
        }
        let len = block_len(*count);
        let size = 1u64 << (32 - len);
        loop {
            cursor = cursor.div_ceil(size) * size;
            match taken
                .iter()
                .find(|(s, e, _)| cursor < *e && *s < cursor + size)
            {
                Some(&(_, end, _)) => cursor = end,
                None => break,
            }
        }
        if cursor + size > base_end {
            errors.push((
                g,
                format!("address_plan.base {base} has no free /{len} left for this group's {count} nodes"),
                "use a larger `address_plan.base`, or fewer nodes".into(),
            ));
            return Err(errors);
        }
        // The block is aligned and inside IPv4, so it is a valid network.
        blocks.push(Ipv4Net::new((cursor as u32).into(), len).expect("aligned block"));
        cursor += size;
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

/// The longest prefix length whose block holds `count` nodes.
fn block_len(count: usize) -> u8 {
    let size = (count as u64 + 2).next_power_of_two().max(4);
    32 - size.trailing_zeros() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_aligned_blocks_in_order() {
        let blocks = allocate(net("10.0.0.0/16"), &[(None, 10), (None, 200), (None, 2)]).unwrap();
        let expected = ["10.0.0.0/28", "10.0.1.0/24", "10.0.2.0/30"].map(net);
        assert_eq!(blocks, expected);
    }

    #[test]
    fn skips_explicit_prefixes() {
        let blocks = allocate(
            net("10.0.0.0/16"),
            &[(Some(net("10.0.0.0/24")), 5), (None, 5)],
        )
        .unwrap();
        assert_eq!(blocks, vec![net("10.0.0.0/24"), net("10.0.1.0/29")]);
    }

    #[test]
    fn refuses_small_and_overlapping_prefixes() {
        let errs = allocate(
            net("10.0.0.0/16"),
            &[
                (Some(net("10.0.0.0/24")), 5),
                (Some(net("10.0.0.128/25")), 200),
            ],
        )
        .unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[0].1,
            "prefix 10.0.0.128/25 holds 126 nodes but the group has 200"
        );
        assert_eq!(errs[0].2, "use a prefix of length 24 or shorter");
        assert_eq!(
            errs[1].1,
            "prefix 10.0.0.128/25 overlaps the prefix of groups[0]"
        );
    }

    #[test]
    fn a_full_base_is_an_error() {
        let errs = allocate(net("10.0.0.0/24"), &[(None, 200), (None, 100)]).unwrap_err();
        assert_eq!(errs[0].0, 1);
        assert!(errs[0].1.contains("no free /25"));
    }
}
