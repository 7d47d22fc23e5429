//! A conference of real `edge conference` processes through the real `supernode` binary:
//! one creates it and invites the others, each sends its own tone, and each must hear every
//! other participant's tone in its mix and its own at least 30 dB below them (Goertzel
//! levels reported by the edge).

mod common;

use std::time::Duration;

use common::{Edge, Node, data_dir, partner};

/// Participants: 4 is what this loaded 2-core machine carries steadily next to the other
/// builds (each edge runs an Opus encoder and decoder, the supernode one mixer);
/// `SUPERNODE_CONFERENCE_PARTIES` (3 to 6) runs another size.
fn parties() -> usize {
    std::env::var("SUPERNODE_CONFERENCE_PARTIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
        .clamp(3, 6)
}
const TONES: [u32; 6] = [440, 620, 820, 1040, 1260, 1500];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_hears_the_others_tones_and_not_its_own() {
    let dir = data_dir("conf_e2e");
    let (_, key) = partner(&dir, "conf-e2e", false);
    let node = Node::start(&dir, &[]);
    let parties = parties();
    let mut accounts = Vec::new();
    for i in 0..parties {
        accounts.push(node.account(&key, &format!("p{i}")).await);
    }
    let tones = &TONES[..parties];
    let measure: Vec<String> = tones
        .iter()
        .flat_map(|t| ["--measure".to_owned(), t.to_string()])
        .collect();
    let common_args = |tone: u32| -> Vec<String> {
        let mut a = vec![
            "conference".to_owned(),
            "--tone".into(),
            tone.to_string(),
            "--duration".into(),
            "8s".into(),
            "--skip".into(),
            "3s".into(),
            "--no-video".into(),
        ];
        a.extend(measure.iter().cloned());
        a
    };
    // The joiners first: they wait for the invite.
    let mut edges = Vec::new();
    for i in 1..parties {
        let args = common_args(tones[i]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        edges.push(Edge::signaled(&node, &accounts[i].1, &args));
    }
    node.wait_metric(
        "supernode_endpoints",
        (parties - 1) as f64,
        Duration::from_secs(30),
    )
    .await;
    let mut args = common_args(tones[0]);
    args.push("--create".into());
    for (id, _) in &accounts[1..] {
        args.push("--invite".into());
        args.push(id.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    edges.insert(0, Edge::signaled(&node, &accounts[0].1, &args));

    let mut results = Vec::new();
    for e in &mut edges {
        results.push(e.finish(Duration::from_secs(60)));
    }
    for (i, (code, v)) in results.iter().enumerate() {
        assert_eq!(*code, Some(0), "participant {i} failed: {v}");
        let level = |hz: u32| {
            v["levels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["hz"] == hz)
                .unwrap()["db"]
                .as_f64()
                .unwrap()
        };
        assert!(
            v["measured_seconds"].as_f64().unwrap() > 3.0,
            "participant {i} measured too little: {v}"
        );
        assert_eq!(
            v["max_participants_seen"].as_u64().unwrap(),
            parties as u64,
            "participant {i}"
        );
        let own = level(tones[i]);
        let others: Vec<f64> = (0..parties)
            .filter(|&j| j != i)
            .map(|j| level(tones[j]))
            .collect();
        let weakest = others.iter().copied().fold(f64::INFINITY, f64::min);
        eprintln!("participant {i}: own {own:.1} dB, others {others:.1?} dB");
        assert!(
            weakest > -40.0,
            "participant {i} misses another tone: {others:?} dB"
        );
        assert!(
            own <= weakest - 30.0,
            "participant {i} hears its own tone at {own:.1} dB, the others at {others:?}"
        );
    }
    node.expect_metric("supernode_relay_legs", 0.0).await;
}
