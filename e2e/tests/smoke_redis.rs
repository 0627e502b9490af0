//! Redis from the test stack is real: Lua scripts run atomically.

use redis::{AsyncCommands, Script};
use twinkle_e2e::stack::{Stack, unique};

async fn connect(stack: &Stack) -> redis::aio::MultiplexedConnection {
    redis::Client::open(stack.redis_url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

#[tokio::test]
async fn lua_script_decrements_only_while_stock_remains() {
    let stack = Stack::require();
    let mut con = connect(&stack).await;
    let key = unique("smoke-stock");
    let _: () = con.set(&key, 2).await.expect("set");
    let take = Script::new(
        r"local left = tonumber(redis.call('GET', KEYS[1]) or '0')
          if left <= 0 then return -1 end
          return redis.call('DECR', KEYS[1])",
    );
    let mut results = Vec::new();
    for _ in 0..4 {
        let left: i64 = take.key(&key).invoke_async(&mut con).await.expect("script");
        results.push(left);
    }
    assert_eq!(results, vec![1, 0, -1, -1]);
    let _: () = con.del(&key).await.expect("del");
}
