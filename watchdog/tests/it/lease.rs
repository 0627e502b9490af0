//! The lease's compare-and-set: what moto does with a stale DELETE, and
//! what the watchdog's lease does against real Route53 semantics (the
//! front enforces them).

use aws_sdk_route53::Client;
use aws_sdk_route53::error::ProvideErrorMetadata;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use twinkle_dr::RouteState;
use twinkle_e2e::stack::Stack;
use twinkle_watchdog::Error;
use twinkle_watchdog::lease::{Acquire, Lease};
use twinkle_watchdog::route53::Route53;

use crate::support::*;

fn txt(action: ChangeAction, name: &str, value: &str) -> Change {
    Change::builder()
        .action(action)
        .resource_record_set(
            ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::Txt)
                .ttl(60)
                .resource_records(ResourceRecord::builder().value(value).build().unwrap())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Sends one batch; `Err(code)` when refused.
async fn batch(client: &Client, zone: &Zone, changes: Vec<Change>) -> Result<(), String> {
    client
        .change_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map(drop)
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

/// The same three batches against `client`: take (CREATE a), hand over
/// (DELETE a + CREATE b), then a stale takeover (DELETE a + CREATE c).
async fn stale_delete_sequence(client: &Client, zone: &Zone) -> (Result<(), String>, Vec<String>) {
    let name = format!("_twinkle-dr-lease.{}", zone.record);
    let a = "\"holder=a expires=1\"";
    let b = "\"holder=b expires=2\"";
    let c = "\"holder=c expires=3\"";
    batch(client, zone, vec![txt(ChangeAction::Create, &name, a)])
        .await
        .unwrap();
    batch(
        client,
        zone,
        vec![
            txt(ChangeAction::Delete, &name, a),
            txt(ChangeAction::Create, &name, b),
        ],
    )
    .await
    .unwrap();
    let stale = batch(
        client,
        zone,
        vec![
            txt(ChangeAction::Delete, &name, a),
            txt(ChangeAction::Create, &name, c),
        ],
    )
    .await;
    let moto = moto_client(&Stack::require());
    (stale, moto_txt(&moto, zone, &name).await)
}

/// moto 5.2 checks a DELETE against its change journal (was this exact
/// record ever created?), not against the record's current value, and then
/// deletes whatever the name holds. So a stale DELETE succeeds and clobbers
/// the current holder: moto alone cannot prove the lease. If this test
/// starts failing, moto got fixed — then the front's emulation can go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_does_not_enforce_delete_must_match() {
    let stack = Stack::require();
    let moto = moto_client(&stack);
    let zone = create_zone(&moto).await;
    let (stale, left) = stale_delete_sequence(&moto, &zone).await;
    assert_eq!(
        stale,
        Ok(()),
        "moto now refuses a stale DELETE: update FACTS and this test"
    );
    assert_eq!(
        left,
        vec!["\"holder=c expires=3\"".to_owned()],
        "b's lease was clobbered"
    );

    // What moto does refuse: a DELETE of a value it never saw created.
    let name = format!("_twinkle-dr-lease.{}", zone.record);
    let never = batch(
        &moto,
        &zone,
        vec![txt(ChangeAction::Delete, &name, "\"holder=z expires=9\"")],
    )
    .await;
    assert!(never.is_err(), "{never:?}");
}

/// Through the front (real Route53's rule: DELETE must match the current
/// value, CREATE must find nothing), the stale takeover fails as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_delete_fails_with_real_route53_semantics() {
    let stack = Stack::require();
    let moto = moto_client(&stack);
    let zone = create_zone(&moto).await;
    let front = Front::start(&stack).await;
    let through_front = Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .endpoint_url(&front.endpoint)
            .credentials_provider(aws_sdk_route53::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await,
    );
    let (stale, left) = stale_delete_sequence(&through_front, &zone).await;
    assert_eq!(stale, Err("InvalidChangeBatch".to_owned()));
    assert_eq!(
        left,
        vec!["\"holder=b expires=2\"".to_owned()],
        "b keeps the lease"
    );

    let name = format!("_twinkle-dr-lease.{}", zone.record);
    let second_create = batch(
        &through_front,
        &zone,
        vec![txt(ChangeAction::Create, &name, "\"holder=d expires=4\"")],
    )
    .await;
    assert_eq!(second_create, Err("InvalidChangeBatch".to_owned()));
}

/// The lease type itself: take, stand by, preempt, and a renewal from the
/// preempted holder that fails instead of fighting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_take_standby_preempt_and_lost_renewal() {
    let h = Harness::new(true, true, true).await;
    let config_x = h.config("x");
    let config_y = h.config("y");
    let clients = h.clients(&config_x);
    let r53 = Route53::new(&config_x, clients.route53.clone(), Default::default());
    let mut x = Lease::new(&config_x);
    let mut y = Lease::new(&config_y);

    let taken = x
        .acquire(&r53, RouteState::Normal, false, Vec::new(), "x takes")
        .await
        .unwrap();
    assert!(
        matches!(taken, Acquire::Acquired { previous: None, .. }),
        "{taken:?}"
    );
    let now = twinkle_watchdog::lease::unix_ms_now();
    assert!(x.holds(now));

    let standby = y
        .acquire(&r53, RouteState::Normal, false, Vec::new(), "y tries")
        .await
        .unwrap();
    assert!(
        matches!(&standby, Acquire::HeldBy(r) if r.holder == "x"),
        "{standby:?}"
    );
    assert!(!y.holds(now));
    assert!(
        !y.should_try(now),
        "a valid foreign lease costs no calls until it expires"
    );

    let preempted = y
        .acquire(
            &r53,
            RouteState::OverrideDrEcs,
            true,
            Vec::new(),
            "y preempts",
        )
        .await
        .unwrap();
    assert!(matches!(&preempted, Acquire::Acquired { previous: Some(r), .. } if r.holder == "x"));

    // x still believes it holds the lease; its renewal's DELETE is stale.
    assert!(x.holds(twinkle_watchdog::lease::unix_ms_now()));
    let lost = x.renew(&r53, RouteState::Normal).await.unwrap_err();
    assert!(
        matches!(&lost, Error::NotLeaseHolder { holder: Some(h) } if h == "y"),
        "{lost:?}"
    );
    assert!(
        !x.holds(twinkle_watchdog::lease::unix_ms_now()),
        "x stops at once"
    );
    let record = x.known().unwrap();
    assert_eq!(
        (record.holder.as_str(), record.state),
        ("y", Some(RouteState::OverrideDrEcs))
    );
}
