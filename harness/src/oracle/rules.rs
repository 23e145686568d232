//! The oracle's own copy of the spec's rules: the legal node-status transitions (spec 2.2), what
//! each node-status writer may overwrite (spec 2.1) and each shard-status writer's precondition
//! (spec 3). Written from the spec, independently of the node's code: the node's
//! `legal_transition` is never consulted.

use shardstorm_node::ctx::{NodeStatusWriter, ShardStatusWriter};
use shardstorm_node::{NodeStatus, ShardStatus};
use std::mem::discriminant;

/// The node-status variants, ignoring their epoch fields.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Variant {
    Standby,
    Active,
    RecoverMetadata,
    CatchUp,
    CatchUpIncomplete,
    RecoveryInProgress,
}

fn variant(s: &NodeStatus) -> Variant {
    match s {
        NodeStatus::Standby => Variant::Standby,
        NodeStatus::Active => Variant::Active,
        NodeStatus::RecoverMetadata => Variant::RecoverMetadata,
        NodeStatus::RecoveryCatchUp => Variant::CatchUp,
        NodeStatus::RecoveryCatchUpWithIncompleteHistory { .. } => Variant::CatchUpIncomplete,
        NodeStatus::RecoveryInProgress(_) => Variant::RecoveryInProgress,
    }
}

/// "CatchUp*": either catch-up variant.
pub fn catching_up(s: &NodeStatus) -> bool {
    matches!(variant(s), Variant::CatchUp | Variant::CatchUpIncomplete)
}

/// Spec 2.2, row by row. Rewriting the same variant is always legal; the first write of a
/// fresh database may only be `Standby`.
pub fn legal_node_transition(from: Option<&NodeStatus>, to: &NodeStatus) -> bool {
    use Variant::*;
    let Some(from) = from else {
        return variant(to) == Standby;
    };
    if discriminant(from) == discriminant(to) {
        return true;
    }
    let targets: &[Variant] = match variant(from) {
        Standby => &[RecoverMetadata, CatchUp, CatchUpIncomplete],
        Active => &[Standby, CatchUp],
        RecoverMetadata => &[Active, Standby, CatchUp],
        CatchUp | CatchUpIncomplete => &[Standby, RecoverMetadata, RecoveryInProgress],
        RecoveryInProgress => &[Active, Standby, CatchUp],
    };
    targets.contains(&variant(to))
}

/// Spec 2.1: the status each writer may find and the status it writes. `None` when allowed,
/// otherwise what the rule requires.
pub fn node_writer_rule(
    writer: NodeStatusWriter,
    from: Option<&NodeStatus>,
    to: &NodeStatus,
) -> Option<&'static str> {
    use NodeStatusWriter::*;
    let v = from.map(variant);
    // Rewriting the same variant is always legal (spec 2.2); N6 proceeds as N8 does.
    if writer != N1 && from.is_some_and(|f| discriminant(f) == discriminant(to)) {
        return None;
    }
    let (ok, rule) = match writer {
        N1 => (
            from.is_none() && *to == NodeStatus::Standby,
            "N1 writes Standby on a fresh database",
        ),
        N2 => (
            matches!(to, NodeStatus::RecoveryCatchUpWithIncompleteHistory { .. }),
            "N2 writes RecoveryCatchUpWithIncompleteHistory",
        ),
        N3 | N4 => (
            *to == NodeStatus::RecoveryCatchUp,
            "N3/N4 write RecoveryCatchUp",
        ),
        N5 => (
            from.is_some_and(catching_up) && *to == NodeStatus::Standby,
            "N5 turns CatchUp* into Standby",
        ),
        N6 => (
            from.is_some_and(catching_up) && *to == NodeStatus::RecoverMetadata,
            "N6 turns CatchUp* into RecoverMetadata",
        ),
        N7 => (
            (from.is_some_and(catching_up) || v == Some(Variant::RecoveryInProgress))
                && variant(to) == Variant::RecoveryInProgress,
            "N7 turns CatchUp* or RecoveryInProgress into RecoveryInProgress",
        ),
        N8 => (
            v == Some(Variant::Standby) && *to == NodeStatus::RecoverMetadata,
            "N8 turns Standby into RecoverMetadata",
        ),
        N9 => (
            !from.is_some_and(catching_up) && *to == NodeStatus::Standby,
            "N9 turns a non-catching-up status into Standby",
        ),
        N10 => (
            v == Some(Variant::RecoverMetadata) && *to == NodeStatus::Active,
            "N10 turns RecoverMetadata into Active",
        ),
        N11 => (
            v == Some(Variant::RecoveryInProgress) && *to == NodeStatus::Active,
            "N11 turns RecoveryInProgress(e) into Active",
        ),
        Direct => (true, ""),
    };
    (!ok).then_some(rule)
}

/// Spec 3: the status each shard-status writer may find (`None` = no storage yet). `Ok` when
/// allowed, otherwise what the rule requires.
pub fn shard_writer_rule(
    writer: ShardStatusWriter,
    from: Option<ShardStatus>,
    to: ShardStatus,
) -> Option<&'static str> {
    use ShardStatus::*;
    use ShardStatusWriter::*;
    let (ok, rule) = match writer {
        S1 => (
            from.is_none() && to == None,
            "S1 creates a missing shard at None",
        ),
        S2 => (
            from.is_some_and(|f| f != Active) && to == ActiveSync,
            "S2 starts a sync of a stored shard that is not Active",
        ),
        S3 => (
            from == Some(ActiveSync) && to == ActiveRecover,
            "S3 turns ActiveSync into ActiveRecover",
        ),
        S4 => (
            matches!(from, Some(ActiveSync | ActiveRecover)) && to == Active,
            "S4 turns ActiveSync or ActiveRecover into Active",
        ),
        S5 => (
            from == Some(ActiveRecover) && to == ActiveSync,
            "S5 turns ActiveRecover into ActiveSync",
        ),
        S6 => (from.is_some() && to == Active, "S6 writes Active"),
        S7 => (
            from.is_some() && to == LockedToMove,
            "S7 writes LockedToMove",
        ),
        S8 => (false, "S8 drops storage, it writes no status"),
        Direct => (true, ""),
    };
    (!ok).then_some(rule)
}

/// Whether a transfer batch may commit in this shard status (spec 4.4, per-attempt invariant:
/// transfers run in `ActiveSync`, or in `LockedToMove` when the lock came mid-sync).
pub fn transfer_allowed(status: Option<ShardStatus>) -> bool {
    matches!(
        status,
        Some(ShardStatus::ActiveSync | ShardStatus::LockedToMove)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeStatus::*;

    const ALL: [NodeStatus; 6] = [
        Standby,
        Active,
        RecoverMetadata,
        RecoveryCatchUp,
        RecoveryInProgress(3),
        RecoveryCatchUpWithIncompleteHistory {
            first_complete_epoch: 2,
            epoch_at_start: 4,
        },
    ];

    #[test]
    fn the_table_of_spec_2_2() {
        let legal = |a: &NodeStatus, b: &NodeStatus| legal_node_transition(Some(a), b);
        assert!(legal_node_transition(None, &Standby));
        assert!(!legal_node_transition(None, &Active));
        // The spec's illegal examples.
        assert!(!legal(&RecoveryCatchUp, &Active));
        assert!(!legal(&Active, &RecoverMetadata));
        assert!(!legal(&Standby, &Active));
        assert!(legal(&RecoverMetadata, &Active));
        assert!(legal(&RecoveryInProgress(3), &RecoveryInProgress(4)));
        let count = ALL
            .iter()
            .flat_map(|a| ALL.iter().map(move |b| (a, b)))
            .filter(|(a, b)| legal(a, b))
            .count();
        // 6 rewrites, Standby 3, Active 2, RecoverMetadata 3, two CatchUp* rows of 3 (plus each
        // other: not listed), RecoveryInProgress 3.
        assert_eq!(count, 6 + 3 + 2 + 3 + 3 + 3 + 3);
    }

    #[test]
    fn node_writers_of_spec_2_1() {
        use NodeStatusWriter::*;
        assert!(node_writer_rule(N10, Some(&RecoverMetadata), &Active).is_none());
        assert!(node_writer_rule(N10, Some(&RecoveryCatchUp), &Active).is_some());
        assert!(node_writer_rule(N8, Some(&Active), &RecoverMetadata).is_some());
        assert!(node_writer_rule(N9, Some(&RecoveryCatchUp), &Standby).is_some());
        assert!(node_writer_rule(N11, Some(&RecoveryInProgress(2)), &Active).is_none());
        assert!(node_writer_rule(N1, Some(&Standby), &Standby).is_some());
        assert!(node_writer_rule(Direct, Some(&Active), &RecoveryCatchUp).is_none());
    }

    #[test]
    fn shard_writers_of_spec_3() {
        use ShardStatus::*;
        use ShardStatusWriter::*;
        assert!(shard_writer_rule(S1, Option::None, None).is_none());
        assert!(shard_writer_rule(S1, Some(Active), None).is_some());
        assert!(shard_writer_rule(S2, Some(Active), ActiveSync).is_some());
        assert!(shard_writer_rule(S2, Some(LockedToMove), ActiveSync).is_none());
        assert!(shard_writer_rule(S3, Some(ActiveRecover), ActiveRecover).is_some());
        assert!(shard_writer_rule(S4, Some(LockedToMove), Active).is_some());
        assert!(shard_writer_rule(S4, Some(ActiveRecover), Active).is_none());
        assert!(shard_writer_rule(S5, Some(ActiveSync), ActiveSync).is_some());
        assert!(shard_writer_rule(S7, Some(None), LockedToMove).is_none());
        assert!(transfer_allowed(Some(LockedToMove)));
        assert!(!transfer_allowed(Some(ActiveRecover)));
    }
}
