//! Defects found by trying Meterbell as a new user would, each checked end to end through the
//! template's routes against DynamoDB Local.

use meterbell_dev::testing::{app, request_to, stack, token};
use serde_json::json;

const ROUTE: &str = "/api/v1/notifications/unread-count";
const FUNCTION: &str = "UnreadCountFunction";

async fn unread_count_with(authorization: &str) -> meterbell_dev::testing::Reply {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    request_to(
        app(&stack, FUNCTION),
        &function,
        "GET",
        ROUTE,
        &[("authorization", authorization)],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_may_be_followed_by_a_tab() {
    let t = token("defects-bearer", &[]);
    for header in [
        format!("BEARER {t}"),
        format!("bearer {t}"),
        format!("Bearer\t{t}"),
        format!("Bearer \t  {t}"),
    ] {
        let reply = unread_count_with(&header).await;
        assert_eq!(reply.status, 200, "{header:?}: {}", reply.json);
        assert_eq!(reply.json, json!({"unread_count": 0}));
    }
}

#[tokio::test]
async fn an_empty_token_another_scheme_or_a_token_with_spaces_is_still_401() {
    let t = token("defects-bearer", &[]);
    for header in [
        "Bearer".to_owned(),
        "Bearer \t ".to_owned(),
        format!("Basic {t}"),
        format!("Bearer {t} {t}"),
    ] {
        let reply = unread_count_with(&header).await;
        assert_eq!(reply.status, 401, "{header:?}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "unauthorized");
    }
}
