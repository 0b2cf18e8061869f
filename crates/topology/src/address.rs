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
    fn blocks_fill_the_gaps_around_explicit_prefixes() {
        // The explicit /30 sits between two allocated ones; adjacent blocks do not overlap.
        let blocks = allocate(
            net("10.0.0.0/28"),
            &[
                (None, 2),
                (Some(net("10.0.0.4/30")), 2),
                (None, 2),
                (None, 2),
            ],
        )
        .unwrap();
        let expected = ["10.0.0.0/30", "10.0.0.4/30", "10.0.0.8/30", "10.0.0.12/30"].map(net);
        assert_eq!(blocks, expected);
        let (low, high) = ((Some(net("10.1.0.0/24")), 1), (Some(net("10.1.1.0/24")), 1));
        assert!(allocate(net("10.0.0.0/8"), &[low, high]).is_ok());
        assert!(allocate(net("10.0.0.0/8"), &[high, low]).is_ok());
        // A block after a smaller one is aligned to its own size.
        let blocks = allocate(net("10.0.0.0/24"), &[(None, 1), (None, 6)]).unwrap();
        assert_eq!(blocks, [net("10.0.0.0/30"), net("10.0.0.8/29")]);
    }

    #[test]
    fn blocks_hold_their_nodes_but_not_network_and_broadcast() {
        assert_eq!(capacity(net("10.0.0.0/30")), 2);
        assert_eq!(capacity(net("10.0.0.0/24")), 254);
        assert_eq!(capacity(net("10.0.0.0/32")), 0);
        assert_eq!(capacity(net("0.0.0.0/0")), (1 << 32) - 2);
        // 2 nodes + 2 reserved = 4 addresses; 3 nodes need 8; 254 still fit in a /24.
        assert_eq!([block_len(1), block_len(2), block_len(3)], [30, 30, 29]);
        assert_eq!([block_len(254), block_len(255)], [24, 23]);
    }

    #[test]
    fn a_base_filled_exactly_is_enough() {
        let blocks = allocate(net("10.0.0.0/29"), &[(None, 2), (None, 2)]).unwrap();
        assert_eq!(blocks, [net("10.0.0.0/30"), net("10.0.0.4/30")]);
        let errs = allocate(net("10.0.0.0/29"), &[(None, 2), (None, 2), (None, 1)]).unwrap_err();
        assert_eq!(
            (errs[0].0, errs[0].1.as_str()),
            (
                2,
                "address_plan.base 10.0.0.0/29 has no free /30 left for this group's 1 nodes"
            )
        );
        // An explicit prefix may hold exactly its capacity.
        assert!(allocate(net("10.0.0.0/8"), &[(Some(net("10.5.0.0/30")), 2)]).is_ok());
    }

    #[test]
    fn a_full_base_is_an_error() {
        let errs = allocate(net("10.0.0.0/24"), &[(None, 200), (None, 100)]).unwrap_err();
        assert_eq!(errs[0].0, 1);
        assert!(errs[0].1.contains("no free /25"));
    }
}
