//! Route53 on moto: aws-sdk-route53 reaches it through an endpoint override,
//! and a weighted record set is upserted in one change batch.

use aws_sdk_route53::{
    Client,
    config::{Credentials, Region},
    types::{
        Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
    },
};
use twinkle_e2e::stack::{Stack, unique};

async fn route53(stack: &Stack) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&stack.route53_endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    Client::new(&config)
}

fn weighted(name: &str, id: &str, weight: i64, ip: &str) -> Change {
    Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(
            ResourceRecordSet::builder()
                .name(name)
                .r#type(RrType::A)
                .set_identifier(id)
                .weight(weight)
                .ttl(30)
                .resource_records(ResourceRecord::builder().value(ip).build().expect("record"))
                .build()
                .expect("record set"),
        )
        .build()
        .expect("change")
}

#[tokio::test]
async fn weighted_records_upserted_in_one_batch() {
    let stack = Stack::require();
    let r53 = route53(&stack).await;
    let zone_name = format!("{}.example.", unique("smoke"));
    let zone = r53
        .create_hosted_zone()
        .name(&zone_name)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("create hosted zone");
    let zone_id = zone.hosted_zone().expect("zone").id().to_owned();
    let record = format!("tickets.{zone_name}");

    // Documentation addresses (RFC 5737): data in a record, never contacted.
    let batch = ChangeBatch::builder()
        .changes(weighted(&record, "primary-seoul-eks", 100, "192.0.2.10"))
        .changes(weighted(&record, "dr-singapore-eks", 0, "192.0.2.20"))
        .changes(weighted(&record, "dr-singapore-ecs", 0, "192.0.2.30"))
        .build()
        .expect("batch");
    let change = r53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(batch)
        .send()
        .await
        .expect("change record sets");
    let change_id = change.change_info().expect("change info").id().to_owned();
    let status = r53
        .get_change()
        .id(&change_id)
        .send()
        .await
        .expect("get change");
    assert_eq!(
        status.change_info().map(|c| c.status().clone()),
        Some(ChangeStatus::Insync)
    );

    let sets = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("list record sets");
    let mut weights: Vec<(String, i64)> = sets
        .resource_record_sets()
        .iter()
        .filter(|s| s.r#type() == &RrType::A)
        .map(|s| {
            (
                s.set_identifier().unwrap_or_default().to_owned(),
                s.weight().unwrap_or(-1),
            )
        })
        .collect();
    weights.sort();
    assert_eq!(
        weights,
        vec![
            ("dr-singapore-ecs".to_owned(), 0),
            ("dr-singapore-eks".to_owned(), 0),
            ("primary-seoul-eks".to_owned(), 100),
        ]
    );
}
