use std::time::Duration;

use jiff::Timestamp;

use super::*;

fn id(s: &str) -> QueueId {
    s.parse().expect("test id")
}

fn ids(n: usize, prefix: &str) -> Vec<QueueId> {
    (0..n).map(|i| id(&format!("{prefix}{i}"))).collect()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("test time")
}

fn enter_all(places: &mut Places, all: &[QueueId], mode: OpeningMode) -> Vec<QueueStep> {
    places.enter(all.iter().map(|i| (i, false)), mode)
}

#[test]
fn places_are_given_in_order_once_and_survive_a_replay() {
    let mut places = Places::default();
    let first = ids(3, "a");
    let mut journal = enter_all(&mut places, &first, OpeningMode::Fifo);
    // A redelivery of the same entries, mixed with new ones.
    let mut again = first.clone();
    again.push(id("b0"));
    again.push(id("b0"));
    journal.extend(enter_all(&mut places, &again, OpeningMode::Fifo));
    assert_eq!(places.assigned(), 4);
    assert_eq!(places.sequence(&id("a1")), Some(2));
    assert_eq!(places.sequence(&id("b0")), Some(4));

    let replayed = Places::replay(&journal).expect("a keeper's journal");
    assert_eq!(replayed.order(), places.order());
    assert_eq!(replayed.watermark(), places.watermark());
    assert_eq!(replayed.watermark(), journal.len() as u64);
}

#[test]
fn big_batches_are_journaled_in_small_steps() {
    let mut places = Places::default();
    let all = ids(STEP_CHUNK * 2 + 1, "c");
    let journal = enter_all(&mut places, &all, OpeningMode::Fifo);
    assert_eq!(journal.len(), 3);
    assert_eq!(places.assigned(), all.len() as u64);
    assert!(
        matches!(&journal[2], QueueStep::Placed { first, ids } if *first == 1001 && ids.len() == 1)
    );
}

#[test]
fn admission_respects_budget_cap_and_places() {
    let mut places = Places::default();
    enter_all(&mut places, &ids(10, "d"), OpeningMode::Fifo);
    assert_eq!(
        places.admit(t(0), 4, 100, 0),
        Some(QueueStep::Admitted {
            serving: 4,
            at: t(0)
        })
    );
    // Cap: 6 of 8 sessions live, so 2 more.
    assert_eq!(
        places.admit(t(1), 10, 8, 6).map(|_| places.serving()),
        Some(6)
    );
    assert_eq!(places.admit(t(1), 10, 8, 8), None, "cap reached");
    assert_eq!(
        places.admit(t(2), 100, 100, 0).map(|_| places.serving()),
        Some(10)
    );
    assert_eq!(places.admit(t(3), 100, 100, 0), None, "nobody waiting");
}

#[test]
fn the_serving_counter_never_moves_back() {
    // Two keepers a tick apart (the older fenced just after) may journal a
    // lower counter after a higher one.
    let mut places = Places::default();
    let mut journal = enter_all(&mut places, &ids(10, "e"), OpeningMode::Fifo);
    journal.push(QueueStep::Admitted {
        serving: 7,
        at: t(0),
    });
    journal.push(QueueStep::Admitted {
        serving: 5,
        at: t(1),
    });
    let replayed = Places::replay(&journal).expect("valid");
    assert_eq!(replayed.serving(), 7);
}

#[test]
fn a_journal_no_keeper_wrote_is_refused() {
    let gap = [QueueStep::Placed {
        first: 2,
        ids: vec![id("x")],
    }];
    assert!(matches!(
        Places::replay(&gap),
        Err(JournalError::Gap { .. })
    ));
    let twice = [
        QueueStep::Placed {
            first: 1,
            ids: vec![id("x")],
        },
        QueueStep::Placed {
            first: 2,
            ids: vec![id("x")],
        },
    ];
    assert!(matches!(
        Places::replay(&twice),
        Err(JournalError::Twice { .. })
    ));
    let past = [
        QueueStep::Placed {
            first: 1,
            ids: vec![id("x")],
        },
        QueueStep::Admitted {
            serving: 2,
            at: t(0),
        },
    ];
    assert!(matches!(
        Places::replay(&past),
        Err(JournalError::ServingPastPlaces { .. })
    ));
}

#[test]
fn the_draw_shuffles_the_pre_queue_then_keeps_arrival_order() {
    let mut places = Places::default();
    let pre = ids(5, "p");
    let mut journal = places.enter(pre.iter().map(|i| (i, true)), OpeningMode::ShuffleAtOpen);
    journal.extend(places.enter([(&id("late0"), false)], OpeningMode::ShuffleAtOpen));
    // Redelivered while held: held once.
    journal.extend(places.enter(pre.iter().map(|i| (i, true)), OpeningMode::ShuffleAtOpen));
    assert_eq!((places.assigned(), places.held()), (0, 6));
    assert_eq!(
        places.admit(t(0), 10, 10, 0),
        None,
        "nobody placed before the draw"
    );

    journal.extend(places.draw(|ids| ids.reverse()));
    assert!(places.drawn());
    let mut expected: Vec<QueueId> = pre.iter().rev().cloned().collect();
    expected.push(id("late0"));
    assert_eq!(places.order(), expected.as_slice());
    assert!(places.draw(|_| panic!("drawn once")).is_empty());

    // After the draw, entries are placed at once, and held ones are known.
    journal.extend(places.enter(
        [(&id("late1"), false), (&pre[0], true)],
        OpeningMode::ShuffleAtOpen,
    ));
    assert_eq!(places.sequence(&id("late1")), Some(7));
    assert_eq!(places.assigned(), 7);

    let replayed = Places::replay(&journal).expect("valid");
    assert_eq!(replayed.order(), places.order());
    assert!(replayed.drawn());
}

#[test]
fn a_draw_interrupted_before_its_journal_is_drawn_again() {
    // The draw's steps are journaled in one transaction: a replay sees all
    // or none. With none, the held entries are still held.
    let mut places = Places::default();
    let pre = ids(3, "q");
    let journal = places.enter(pre.iter().map(|i| (i, true)), OpeningMode::ShuffleAtOpen);
    let _lost = places.draw(|_| {});
    let replayed = Places::replay(&journal).expect("valid");
    assert_eq!(
        (replayed.assigned(), replayed.held(), replayed.drawn()),
        (0, 3, false)
    );
}

#[test]
fn live_admissions_are_the_admitted_within_their_lifetime() {
    let ttl = Duration::from_secs(60);
    let hb = Duration::from_secs(10);
    let mut places = Places::default();
    enter_all(&mut places, &ids(6, "s"), OpeningMode::Fifo);
    places.admit(t(0), 2, 100, 0);
    places.admit(t(30), 2, 100, 0);
    places.admit(t(55), 1, 100, 0);

    let live = places.live_admissions(t(56), ttl, hb);
    let names: Vec<&str> = live.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(names, ["s0", "s1", "s2", "s3", "s4"]);
    assert_eq!(live[0].admitted_at, t(0));
    assert_eq!(live[0].deadline, t(60), "the lifetime caps the grace");
    assert_eq!(live[4].deadline, t(66), "heartbeat grace");

    let live = places.live_admissions(t(65), ttl, hb);
    let names: Vec<&str> = live.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(names, ["s2", "s3", "s4"], "s0, s1 are past their lifetime");
    assert_eq!(live[0].deadline, t(75));
    let live = places.live_admissions(t(88), ttl, hb);
    assert_eq!(live.len(), 3);
    assert_eq!(live[0].deadline, t(90), "the lifetime caps the grace");
    assert_eq!(live[2].deadline, t(98));
    assert!(places.live_admissions(t(200), ttl, hb).is_empty());
}
