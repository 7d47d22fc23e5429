//! Storage against real databases: SQLite always, PostgreSQL when
//! `SUPERNODE_TEST_POSTGRES_URL` is set.

mod common;

use supernode_signaling::admin;
use supernode_signaling::ids::{AccountId, PartnerId};
use supernode_signaling::storage::Backend;
use supernode_signaling::{SignalingError, Store};

async fn exercise(store: &Store) {
    // Migrations are idempotent: a second connect finds everything applied.
    store.ping().await.unwrap();

    let a = admin::create_partner(store, "Acme", false, 100)
        .await
        .unwrap();
    let b = admin::create_partner(store, "Beta", true, 100)
        .await
        .unwrap();
    let pa = PartnerId::parse(&a.id).unwrap();
    let pb = PartnerId::parse(&b.id).unwrap();
    let (found, hash) = store
        .partner_by_key_hash(&supernode_signaling::apikey::hash(&a.api_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, pa);
    assert_eq!(found.name, "Acme");
    assert!(!found.relay);
    assert_ne!(hash, a.api_key, "keys are stored hashed");
    assert!(
        store
            .partner_by_key_hash(&supernode_signaling::apikey::hash(&b.api_key))
            .await
            .unwrap()
            .unwrap()
            .0
            .relay
    );

    // Accounts: idempotent by external id, per partner.
    let (acc, created) = store
        .create_account(&pa, Some("Ann"), Some("u-1"), 200)
        .await
        .unwrap();
    assert!(created);
    let (again, created) = store
        .create_account(&pa, Some("Other name"), Some("u-1"), 300)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, acc);
    let (other, created) = store
        .create_account(&pb, None, Some("u-1"), 300)
        .await
        .unwrap();
    assert!(
        created,
        "the same external id under another partner is another account"
    );
    assert_ne!(other.id, acc.id);
    let (anon1, _) = store.create_account(&pa, None, None, 1).await.unwrap();
    let (anon2, _) = store.create_account(&pa, None, None, 1).await.unwrap();
    assert_ne!(
        anon1.id, anon2.id,
        "accounts without external id are always new"
    );

    assert_eq!(
        store.get_account(&pa, &acc.id).await.unwrap(),
        Some(acc.clone())
    );
    assert_eq!(store.get_account(&pb, &acc.id).await.unwrap(), None);
    assert_eq!(
        store.live_account_partner(&acc.id).await.unwrap(),
        Some(pa.clone())
    );
    assert!(
        !store.delete_account(&pb, &acc.id).await.unwrap(),
        "not across partners"
    );
    assert!(store.delete_account(&pa, &acc.id).await.unwrap());
    assert!(!store.delete_account(&pa, &acc.id).await.unwrap());
    assert_eq!(store.live_account_partner(&acc.id).await.unwrap(), None);
    assert_eq!(
        store
            .live_account_partner(&AccountId::random())
            .await
            .unwrap(),
        None
    );

    // Revocation: the key stops resolving, the partner's accounts stop logging in.
    assert_eq!(
        store.live_account_partner(&anon1.id).await.unwrap(),
        Some(pa.clone())
    );
    admin::revoke_partner(store, &a.id, 500).await.unwrap();
    assert!(
        store
            .partner_by_key_hash(&supernode_signaling::apikey::hash(&a.api_key))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.live_account_partner(&anon1.id).await.unwrap(), None);
    assert!(matches!(
        admin::revoke_partner(store, &a.id, 600).await,
        Err(SignalingError::NoSuchPartner(_))
    ));
    assert!(matches!(
        admin::revoke_partner(store, "nonsense", 600).await,
        Err(SignalingError::NoSuchPartner(_))
    ));

    // Signing keys: first key, rotation, retirement.
    admin::ensure_signing_key(store, 1000).await.unwrap();
    admin::ensure_signing_key(store, 1001).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    let r1 = admin::rotate_secret(store, 2000, 3600).await.unwrap();
    assert_eq!(r1.verifying.len(), 2);
    assert!(r1.retired.is_empty());
    assert_eq!(r1.verifying.last(), Some(&r1.key_id));
    let r2 = admin::rotate_secret(store, 2000 + 3601 + 10, 3600)
        .await
        .unwrap();
    assert_eq!(
        r2.retired.len(),
        1,
        "the first key was superseded > TTL ago"
    );
    assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    let ring = admin::load_keyring(store, 2000 + 3611, 3600).await.unwrap();
    assert_eq!(ring.current().unwrap().kid, r2.key_id);

    // Text with quotes and unicode survives.
    let (weird, _) = store
        .create_account(
            &pb,
            Some("O'Brien \"🙂\" ünï"),
            Some("x'; DROP TABLE accounts; --"),
            1,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_account(&pb, &weird.id)
            .await
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("O'Brien \"🙂\" ünï")
    );
}

#[tokio::test]
async fn sqlite_storage() {
    let db = common::temp_sqlite();
    let url = db.url.clone();
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    exercise(&store).await;
    store.close().await;
    // Reopening the file keeps the data and does not re-run migrations.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.signing_keys().await.unwrap().len(), 2);
}

#[tokio::test]
async fn postgres_storage() {
    let Some(base) = common::postgres_url() else {
        return;
    };
    let url = common::postgres_schema_url(&base).await;
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    exercise(&store).await;
    store.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.signing_keys().await.unwrap().len(), 2);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(Store::connect("mysql://x").await.is_err());
    assert!(Store::connect("nonsense").await.is_err());
}

#[tokio::test]
async fn postgres_serves_the_whole_api() {
    let Some(base) = common::postgres_url() else {
        return;
    };
    let url = common::postgres_schema_url(&base).await;
    let server = common::start_with(&url, common::test_config()).await;
    let (_, key) = common::partner(&server, "pg").await;
    let acc = common::account(&server, &key).await;
    let token = common::token(&server, &key, &acc).await;
    let (_client, ep) = common::Client::login(&server, &token).await;
    assert!(ep.as_str().starts_with("ep_"));
}
