//! The selling region moves with the weights: the ownership record is
//! changed in the very batch that moves traffic to the other region, its
//! epoch grows by one per move, and a move within a region leaves it alone.

use std::time::Duration;

use twinkle_dr::{Command, Ownership, Region, RouteState, Weights};
use twinkle_watchdog::manual_command;

use crate::support::*;

fn owner_txt(region: Region, epoch: u64) -> String {
    Ownership { region, epoch }.to_txt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_moves_in_the_same_batch_as_the_weights() {
    let h = Harness::new(true, true, true).await;
    let config = h.config("owner");
    let owner_name = config.owner_record_name();
    let wd = h.spawn(config);
    wd.wait_ready().await;
    assert!(
        moto_txt(&h.moto, &h.zone, &owner_name).await.is_empty(),
        "no record before any move: the primary sells at epoch 0"
    );
    assert_eq!(wd.status().ownership, Some(Ownership::INITIAL));

    // Primary down: DR ECS first, then DR EKS (both in the DR region).
    h.targets.primary.set_healthy(false);
    h.wait_weights(Weights::new(0, 100, 0), Duration::from_secs(10))
        .await;
    assert_eq!(
        moto_txt(&h.moto, &h.zone, &owner_name).await,
        [owner_txt(Region::Dr, 1)]
    );
    let writes = h.front.weight_writes();
    assert!(writes.len() >= 2, "{writes:?}");
    assert_eq!(
        writes[0].ownership.as_deref(),
        Some("region=dr epoch=1"),
        "the batch that left the primary carries the ownership change"
    );
    assert!(
        writes[1..].iter().all(|b| b.ownership.is_none()),
        "moves within the DR region leave ownership alone: {writes:?}"
    );
    assert_eq!(
        wd.status().ownership,
        Some(Ownership {
            region: Region::Dr,
            epoch: 1
        })
    );

    // Failback by the operator's command: back to the primary, epoch 2.
    h.targets.primary.set_healthy(true);
    wait_for("primary seen up", Duration::from_secs(5), || async {
        wd.primary_up().then_some(())
    })
    .await;
    let cli = h.config("cli");
    let outcome = manual_command(&cli, &h.clients(&cli), Command::FailbackToPrimary)
        .await
        .unwrap();
    assert_eq!(outcome.state, RouteState::Normal);
    assert_eq!(
        outcome.ownership,
        Ownership {
            region: Region::Primary,
            epoch: 2
        }
    );
    assert_eq!(
        moto_txt(&h.moto, &h.zone, &owner_name).await,
        [owner_txt(Region::Primary, 2)]
    );
    let last = h.front.weight_writes().pop().unwrap();
    assert_eq!(last.lease_holder.as_deref(), Some("cli"));
    assert_eq!(last.ownership.as_deref(), Some("region=primary epoch=2"));
    wd.stop().await;
}
