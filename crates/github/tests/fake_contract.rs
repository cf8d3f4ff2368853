//! The fake GitHub API's own contract checks: its schema validator accepts GitHub's documented
//! examples and rejects what the description forbids, and its router finds the right operation.

use dhow_test_support::github::{Spec, spec};
use serde_json::{Value, json};

fn errors(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    spec().validate(schema, value, "$", &mut errors);
    errors
}

#[test]
fn documented_examples_of_the_operations_dhow_uses_validate() {
    let mut checked = 0;
    for (op, status) in [
        ("repos/create-deployment", 201),
        ("repos/get-deployment", 200),
        ("repos/list-deployments", 200),
        ("repos/create-deployment-status", 201),
        ("repos/list-deployment-statuses", 200),
        ("issues/create-comment", 201),
        ("issues/update-comment", 200),
        ("issues/list-comments", 200),
        ("actions/get-workflow-run", 200),
    ] {
        let schema = spec()
            .response_schema_of(op, status)
            .expect("schema")
            .clone();
        let examples = spec().response_examples(op, status);
        assert!(!examples.is_empty(), "{op} {status} has examples");
        for (name, example) in examples {
            let found = errors(&schema, &example);
            assert!(found.is_empty(), "{op} {status} example {name}: {found:?}");
            checked += 1;
        }
    }
    assert!(checked >= 9);
}

#[test]
fn request_bodies_are_checked_for_type_enum_required_and_extras() {
    let status = spec()
        .request_schema("repos/create-deployment-status")
        .expect("schema")
        .clone();
    assert!(
        errors(
            &status,
            &json!({"state": "success", "auto_inactive": false})
        )
        .is_empty()
    );
    assert_eq!(
        errors(&status, &json!({"state": "finished"})),
        [
            "$.state: \"finished\" is not one of [\"error\",\"failure\",\"inactive\",\"in_progress\",\"queued\",\"pending\",\"success\"]"
        ]
    );
    assert_eq!(
        errors(&status, &json!({})),
        ["$: required property `state` is missing"]
    );
    assert_eq!(
        errors(
            &status,
            &json!({"state": "success", "auto_inactive": "yes"})
        ),
        ["$.auto_inactive: expected boolean, got string"]
    );

    let deployment = spec()
        .request_schema("repos/create-deployment")
        .expect("schema")
        .clone();
    assert!(errors(&deployment, &json!({"ref": "main", "payload": {"a": 1}})).is_empty());
    assert!(errors(&deployment, &json!({"ref": "main", "payload": "{}"})).is_empty());
    assert!(errors(&deployment, &json!({"ref": "main", "description": null})).is_empty());
    assert_eq!(
        errors(&deployment, &json!({"ref": "main", "payload": 3})),
        ["$.payload: matches 0 of oneOf (exactly one required)"]
    );
    assert_eq!(
        errors(
            &deployment,
            &json!({"ref": "main", "required_contexts": [1]})
        ),
        ["$.required_contexts[0]: expected string, got number"]
    );

    let environment = spec()
        .request_schema("repos/create-or-update-environment")
        .expect("schema")
        .clone();
    assert_eq!(
        errors(&environment, &json!({"colour": "red"})),
        ["$: unknown property `colour`"]
    );
    let dispatch = spec()
        .request_schema("actions/create-workflow-dispatch")
        .expect("schema")
        .clone();
    let inputs: serde_json::Map<String, Value> =
        (0..26).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        errors(&dispatch, &json!({"ref": "main", "inputs": inputs})),
        ["$.inputs: more than 25 properties"]
    );
}

#[test]
fn response_schemas_check_nullability_and_formats() {
    let deployment = Spec::component_schema("deployment");
    let mut example = spec().response_examples("repos/get-deployment", 200)[0]
        .1
        .clone();
    assert!(errors(&deployment, &example).is_empty());
    example["description"] = Value::Null;
    assert!(
        errors(&deployment, &example).is_empty(),
        "description is nullable"
    );
    example["sha"] = Value::Null;
    assert_eq!(
        errors(&deployment, &example),
        ["$.sha: null is not allowed"]
    );
    example["sha"] = json!("abc");
    example["created_at"] = json!("yesterday");
    assert_eq!(
        errors(&deployment, &example),
        ["$.created_at: \"yesterday\" is not a date-time"]
    );
}

#[test]
fn routes_resolve_to_the_right_operation() {
    let route = |method: &str, path: &str| {
        spec()
            .match_route(method, path)
            .map(|(id, params)| (id, params.into_iter().collect::<Vec<_>>()))
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let base = [pair("owner", "acme"), pair("repo", "shop")];
    let with = |extra: (String, String)| {
        let mut all = base.to_vec();
        all.push(extra);
        all.sort();
        all
    };
    assert_eq!(
        route("PATCH", "/repos/acme/shop/issues/comments/5"),
        Ok((
            "issues/update-comment".to_owned(),
            with(pair("comment_id", "5"))
        ))
    );
    assert_eq!(
        route("GET", "/repos/acme/shop/issues/5/comments"),
        Ok((
            "issues/list-comments".to_owned(),
            with(pair("issue_number", "5"))
        ))
    );
    assert_eq!(
        route("GET", "/repos/acme/shop/contents/docs/badges/prod.json"),
        Ok((
            "repos/get-content".to_owned(),
            with(pair("path", "docs/badges/prod.json"))
        ))
    );
    assert_eq!(
        route("GET", "/repos/acme/shop/environments/preview%2Fpr-7"),
        Ok((
            "repos/get-environment".to_owned(),
            with(pair("environment_name", "preview/pr-7"))
        ))
    );
    assert_eq!(
        route("POST", "/repos/acme/shop/deployments/9/statuses").map(|(id, _)| id),
        Ok("repos/create-deployment-status".to_owned())
    );
    let err = route("GET", "/repos/acme/shop/issues/comments/5").expect_err("not described");
    assert!(
        err.contains("method not in the description (it has DELETE, PATCH)"),
        "{err}"
    );
    let err = route("GET", "/repos/acme/shop/releases").expect_err("not described");
    assert!(
        err.contains("no operation in the description matches"),
        "{err}"
    );
}
