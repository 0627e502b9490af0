//! The ownership rules: examples, then a property over random timelines.

use proptest::prelude::*;

use super::*;

fn gate(region: Region) -> OwnerGate {
    OwnerGate::new(region, OwnershipTiming::default()).unwrap()
}

const PRIMARY_0: Ownership = Ownership::INITIAL;
const DR_1: Ownership = Ownership {
    region: Region::Dr,
    epoch: 1,
};

#[test]
fn the_region_follows_the_weights() {
    assert_eq!(RouteState::Normal.selling_region(), Region::Primary);
    assert_eq!(
        RouteState::OverridePrimary.selling_region(),
        Region::Primary
    );
    for state in [
        RouteState::DrEcsOnly,
        RouteState::DrSplit,
        RouteState::DrEks,
        RouteState::OverrideDrEks,
        RouteState::OverrideDrEcs,
    ] {
        assert_eq!(state.selling_region(), Region::Dr, "{state}");
    }
    for target in Target::ALL {
        assert_eq!(
            RouteState::pinned_to(target).selling_region(),
            target.region()
        );
    }
}

#[test]
fn the_epoch_grows_only_when_the_region_changes() {
    let o = Ownership::INITIAL.after(RouteState::Normal);
    assert_eq!(o, Ownership::INITIAL);
    let o = o.after(RouteState::DrEcsOnly);
    assert_eq!(o, DR_1);
    assert_eq!(o.after(RouteState::DrSplit), DR_1);
    assert_eq!(o.after(RouteState::OverrideDrEks), DR_1);
    let back = o.after(RouteState::Normal);
    assert_eq!(
        back,
        Ownership {
            region: Region::Primary,
            epoch: 2
        }
    );
}

#[test]
fn the_record_round_trips_as_txt() {
    let o = Ownership {
        region: Region::Dr,
        epoch: 7,
    };
    assert_eq!(o.to_txt(), "\"region=dr epoch=7\"");
    assert_eq!(Ownership::parse_txt(&o.to_txt()), Some(o));
    for txt in [
        "region=dr epoch=7",
        "\"region=dr\"",
        "\"epoch=7\"",
        "\"region=mars epoch=7\"",
        "\"region=dr epoch=-1\"",
        "\"region=dr epoch=7 holder=x\"",
    ] {
        assert_eq!(Ownership::parse_txt(txt), None, "{txt}");
    }
}

#[test]
fn a_lease_the_margin_eats_is_refused() {
    let timing = OwnershipTiming {
        lease: Millis(1_000),
        margin: Millis(500),
    };
    assert!(OwnerGate::new(Region::Primary, timing).is_err());
}

#[test]
fn the_first_owner_decides_at_once_and_only_while_confirmed() {
    let mut g = gate(Region::Primary);
    assert_eq!(g.verdict(Millis(0)), Verdict::Unconfirmed);
    g.observe(Millis(100), Millis(140), PRIMARY_0);
    assert_eq!(
        g.verdict(Millis(150)),
        Verdict::Owner {
            epoch: 0,
            until: Millis(100 + 10_000 - 500)
        }
    );
    // Reads keep failing: deciding stops a margin before the lease ends.
    assert!(g.verdict(Millis(9_599)).may_decide());
    assert_eq!(g.verdict(Millis(9_600)), Verdict::Unconfirmed);
    // A later read confirms again.
    g.observe(Millis(9_700), Millis(9_800), PRIMARY_0);
    assert!(g.verdict(Millis(9_800)).may_decide());
}

#[test]
fn the_other_region_never_decides() {
    let mut g = gate(Region::Dr);
    g.observe(Millis(0), Millis(10), PRIMARY_0);
    assert_eq!(
        g.verdict(Millis(20)),
        Verdict::NotOwner { owner: PRIMARY_0 }
    );
}

#[test]
fn a_new_owner_waits_out_the_old_owners_lease() {
    let mut old = gate(Region::Primary);
    let mut new = gate(Region::Dr);
    // One clock for both here; the property below gives each its own.
    old.observe(Millis(1_000), Millis(1_050), PRIMARY_0);
    new.observe(Millis(1_000), Millis(1_050), PRIMARY_0);
    // The watchdog moves weights and ownership at 2,000; the old owner's
    // reads fail from then on (the region is cut off).
    new.observe(Millis(2_100), Millis(2_200), DR_1);
    assert_eq!(
        new.verdict(Millis(2_300)),
        Verdict::Handover {
            epoch: 1,
            from: Millis(2_200 + 10_000 + 500)
        }
    );
    // The old owner's last proof (read started at 1,000) runs out first.
    let old_stops = Millis(1_000 + 10_000 - 500);
    assert!(old.verdict(Millis(old_stops.0 - 1)).may_decide());
    assert!(!old.verdict(old_stops).may_decide());
    new.observe(Millis(12_000), Millis(12_100), DR_1);
    assert!(!new.verdict(Millis(12_699)).may_decide());
    assert!(new.verdict(Millis(12_700)).may_decide());
}

#[test]
fn a_restarted_owner_waits_one_lease_after_a_transfer() {
    // Epoch 2 (the primary again after a failback): a fresh gate cannot
    // tell how long ago the transfer was, so it waits.
    let mut g = gate(Region::Primary);
    let primary_2 = Ownership {
        region: Region::Primary,
        epoch: 2,
    };
    g.observe(Millis(0), Millis(50), primary_2);
    assert!(matches!(g.verdict(Millis(60)), Verdict::Handover { .. }));
    g.observe(Millis(10_000), Millis(10_050), primary_2);
    assert!(g.verdict(Millis(10_550)).may_decide());
}

#[test]
fn an_older_answer_arriving_late_changes_nothing() {
    let mut g = gate(Region::Primary);
    g.observe(Millis(0), Millis(10), PRIMARY_0);
    g.observe(Millis(20), Millis(30), DR_1);
    g.observe(Millis(5), Millis(40), PRIMARY_0);
    assert_eq!(g.verdict(Millis(50)), Verdict::NotOwner { owner: DR_1 });
}

// ------------------------------------------------------------ the property

/// A process's monotonic clock: its own origin and a rate error.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: u64,
    /// Parts per million fast (positive) or slow (negative).
    ppm: i64,
}

impl Clock {
    fn at(self, true_ms: u64) -> Millis {
        let skewed = (i128::from(true_ms) * (1_000_000 + i128::from(self.ppm))) / 1_000_000;
        Millis(self.origin + u64::try_from(skewed).unwrap_or(0))
    }
}

/// One read by one region: when it starts (true ms after the previous one
/// finished), how long it takes, where in between it reads the record
/// (per mille of the duration), and whether its answer is lost.
#[derive(Debug, Clone, Copy)]
struct Read {
    gap: u64,
    took: u64,
    at_per_mille: u64,
    lost: bool,
}

fn read() -> impl Strategy<Value = Read> {
    (
        0u64..2_000,
        0u64..3_000,
        0u64..=1_000,
        prop::bool::weighted(0.3),
    )
        .prop_map(|(gap, took, at_per_mille, lost)| Read {
            gap,
            took,
            at_per_mille,
            lost,
        })
}

fn clock() -> impl Strategy<Value = Clock> {
    (0u64..1_000_000_000, -10_000i64..=10_000).prop_map(|(origin, ppm)| Clock { origin, ppm })
}

/// The record over true time: the initial value, then changes at
/// increasing true times, each to the other region at the next epoch.
fn record_at(changes: &[u64], start: Ownership, true_ms: u64) -> Ownership {
    changes
        .iter()
        .take_while(|&&at| at <= true_ms)
        .fold(start, |o, _| Ownership {
            region: match o.region {
                Region::Primary => Region::Dr,
                Region::Dr => Region::Primary,
            },
            epoch: o.epoch + 1,
        })
}

/// The reads of one region as (start, finish, linearization) true times.
fn schedule(reads: &[Read], cut_off: Option<(u64, u64)>) -> Vec<(u64, u64, u64, bool)> {
    let mut t = 0;
    reads
        .iter()
        .map(|r| {
            let start = t + r.gap;
            let finish = start + r.took;
            let at = start + r.took * r.at_per_mille / 1_000;
            t = finish;
            let partitioned = cut_off.is_some_and(|(from, to)| finish >= from && start <= to);
            (start, finish, at, r.lost || partitioned)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// For any timeline — changes of owner at any moments, reads of any
    /// latency answered at any point in between, lost answers, a region cut
    /// off for a while, clocks with their own origins and up to 1 % rate
    /// error — the two regions never both may decide at the same moment.
    #[test]
    fn never_two_owners(
        start_epoch in 0u64..3,
        gaps in prop::collection::vec(1u64..15_000, 0..6),
        primary_reads in prop::collection::vec(read(), 1..60),
        dr_reads in prop::collection::vec(read(), 1..60),
        clocks in (clock(), clock()),
        cut_off in prop::option::of((0u64..40_000, 0u64..20_000)),
        cut_primary in any::<bool>(),
    ) {
        let start = Ownership {
            region: if start_epoch % 2 == 0 { Region::Primary } else { Region::Dr },
            epoch: start_epoch,
        };
        let mut changes = Vec::new();
        let mut at = 0;
        for gap in gaps {
            at += gap;
            changes.push(at);
        }
        let cut = cut_off.map(|(from, len)| (from, from + len));
        let regions = [
            (Region::Primary, clocks.0, schedule(&primary_reads, cut.filter(|_| cut_primary))),
            (Region::Dr, clocks.1, schedule(&dr_reads, cut.filter(|_| !cut_primary))),
        ];
        let mut gates = [gate(Region::Primary), gate(Region::Dr)];
        let mut next = [0usize, 0usize];
        let horizon = regions
            .iter()
            .flat_map(|(_, _, s)| s.last().map(|r| r.1))
            .max()
            .unwrap_or(0)
            + 12_000;
        let mut true_ms = 0;
        while true_ms <= horizon {
            for (i, (_, clock, reads)) in regions.iter().enumerate() {
                while let Some(&(started, finished, at, lost)) = reads.get(next[i]) {
                    if finished > true_ms {
                        break;
                    }
                    next[i] += 1;
                    if !lost {
                        let record = record_at(&changes, start, at);
                        gates[i].observe(clock.at(started), clock.at(finished), record);
                    }
                }
            }
            let deciding: Vec<_> = regions
                .iter()
                .zip(&gates)
                .filter(|((_, clock, _), gate)| gate.verdict(clock.at(true_ms)).may_decide())
                .map(|((region, _, _), _)| *region)
                .collect();
            prop_assert!(
                deciding.len() <= 1,
                "both regions may decide at true {true_ms} ms (changes at {changes:?})"
            );
            true_ms += 10;
        }
    }
}
