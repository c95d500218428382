//! The event recorder against the sandbox API server: repeats fold into a series, a new
//! message is a new Event.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Event, EventType};
use kube::{Client, Config};
use lustre_controller::events::EventRecorder;
use lustre_sandbox::World;
use lustre_sandbox::aws::SimConfig;

fn event(note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: "NotReady".into(),
        note: Some(note.into()),
        action: "NotReady".into(),
        secondary: None,
    }
}

#[tokio::test]
async fn repeats_fold_into_a_series_and_a_new_message_is_a_new_event() {
    let world = World::start(SimConfig::default()).await.expect("world");
    let client =
        Client::try_from(Config::new(world.kube_url.parse().expect("url"))).expect("client");
    let recorder = EventRecorder::new(client.clone(), "lustre-operator", Some("pod-a".into()));
    let regarding = ObjectReference {
        api_version: Some("workspaces.lustre.dev/v1alpha1".into()),
        kind: Some("LustreWorkspace".into()),
        name: Some("w".into()),
        namespace: Some("default".into()),
        uid: Some("uid-1".into()),
        ..ObjectReference::default()
    };
    for _ in 0..3 {
        recorder
            .publish(&event("class standard not found"), &regarding)
            .await
            .expect("publish");
    }
    recorder
        .publish(&event("invalid spec: storageCapacityGiB"), &regarding)
        .await
        .expect("publish");

    let events = Api::<K8sEvent>::namespaced(client, "default")
        .list(&ListParams::default())
        .await
        .expect("list");
    let mut seen: Vec<(String, i32, String)> = events
        .items
        .iter()
        .map(|e| {
            (
                e.note.clone().unwrap_or_default(),
                e.series.as_ref().map_or(1, |s| s.count),
                e.reporting_instance.clone().unwrap_or_default(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("class standard not found".into(), 3, "pod-a".into()),
            ("invalid spec: storageCapacityGiB".into(), 1, "pod-a".into()),
        ]
    );
    assert_eq!(recorder.remembered(), 2);
}
