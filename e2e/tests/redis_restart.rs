//! Redis from the test stack runs with AOF on: acknowledged writes survive a
//! restart of the server. Its own test binary, because restarting Redis would
//! disturb tests running beside it (cargo runs test binaries one at a time).

use redis::AsyncCommands;
use twinkle_e2e::stack::{Stack, unique};

async fn connect(stack: &Stack) -> redis::aio::MultiplexedConnection {
    redis::Client::open(stack.redis_url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

#[tokio::test]
async fn appendonly_is_on_and_writes_survive_a_restart() {
    let stack = Stack::require();
    let mut con = connect(&stack).await;
    let aof: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut con)
        .await
        .expect("config get");
    assert_eq!(aof, vec!["appendonly".to_owned(), "yes".to_owned()]);

    let key = unique("smoke-durable");
    let _: () = con.set(&key, "kept").await.expect("set");
    // RDB snapshots are off in the test stack, so only the AOF can bring the
    // key back after the restart.
    drop(con);
    stack.ctl("restart", "redis").await.expect("restart redis");

    let mut con = connect(&stack).await;
    let value: Option<String> = con.get(&key).await.expect("get after restart");
    assert_eq!(value.as_deref(), Some("kept"));
    let _: () = con.del(&key).await.expect("del");
}
