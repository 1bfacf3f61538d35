//! The restored conformance pack against gptme's recorded answers and full-scan truth.

use serde_json::Value;

use crate::util::{ok, parse, restore, Restored};

#[test]
fn list_json_equals_truth_in_every_field_and_gptme_order() {
    let r = restore("archive");
    let out = ok(r.cmd(&["list", "--json", "--limit", "1000"]));
    let items: Vec<Value> = serde_json::from_value(parse(&out)).unwrap();
    let truth = r.truth();
    let expected = r.expected("limit-1000");
    let want_ids: Vec<&str> = expected["body"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    let got_ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got_ids, want_ids, "order (ties by id descending) as gptme answers");
    assert_eq!(items.len(), 128);
    for item in &items {
        let id = item["id"].as_str().unwrap();
        let mut want = truth[id].clone();
        // The spec's deliberate improvement: the last line that parses as user/assistant.
        Restored::improve(&mut want);
        assert_eq!(item.as_object().unwrap().len(), 22, "{id}: 22 keys");
        assert_eq!(item, &want, "{id}");
    }
}

#[test]
fn list_json_bytes_equal_gptme_detail_body() {
    let r = restore("archive");
    let out = ok(r.cmd(&["list", "--json", "--limit", "1000"]));
    let body = r.improved_body("detail-limit-1000");
    assert_eq!(out, body, "byte-for-byte: sorted keys, compact, ASCII escapes, Python float repr");
}

#[test]
fn hidden_conversations_are_indexed_but_not_listed() {
    let r = restore("archive");
    let out = ok(r.cmd(&["list", "--json", "--limit", "1000"]));
    for hidden in ["test-quokka-hidden", "tmp3f2a9c0d", "2025-12-15-gptme-evals-walrus-7"] {
        assert!(!out.contains(&format!("\"id\":\"{hidden}\"")));
        let shown = parse(&ok(r.cmd(&["show", hidden, "--json"])));
        assert_eq!(shown, r.truth()[hidden], "{hidden} is still indexed exactly");
    }
    let status = parse(&ok(r.cmd(&["status", "--json"])));
    assert_eq!(status["conversations"], 135);
    assert_eq!(status["hidden"], 7);
}

#[test]
fn search_matches_name_id_and_full_preview() {
    let r = restore("archive");
    let out = ok(r.cmd(&["list", "--json", "-q", "quokka"]));
    let items: Vec<Value> = serde_json::from_value(parse(&out)).unwrap();
    let mut ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort();
    // gptme's detail answer: name, id, preview, and the > 8 KB last line it misses in fast mode.
    assert_eq!(
        ids,
        ["2025-11-03-quokka-migration", "edge-search-big-last-line", "edge-search-name", "edge-search-preview"]
    );
}

#[test]
fn crashers_list_normally_with_problems_counted() {
    for case in
        ["unknown-chat-key", "non-object-json-line", "invalid-utf8-last-message", "invalid-utf8-metadata-outside-tail"]
    {
        let r = restore(&format!("archive-crashers/{case}"));
        let items: Vec<Value> = serde_json::from_value(parse(&ok(r.cmd(&["list", "--json"])))).unwrap();
        let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&"2026-01-01-healthy-neighbour"), "{case}: {ids:?}");
        assert!(ids.contains(&format!("2026-01-01-{case}").as_str()), "{case}: {ids:?}");
        let status = parse(&ok(r.cmd(&["status", "--json"])));
        assert_eq!(status["with_problems"], 1, "{case}: the bad one carries a problem count");
    }
}
