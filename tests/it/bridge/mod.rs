//! The bridge end to end: real HTTP clients with cookie jars against two
//! service instances sharing a store, once on Redis and once on DynamoDB.

mod env;
mod flows;

macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::flows::$name(super::env::Backend::Redis).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::flows::$name(super::env::Backend::DynamoDb).await;
                }
            )*
        }
    };
}

on_every_store!(
    password_login_gives_one_identity_to_legacy_pages_and_the_api,
    oidc_login_gives_one_identity_to_legacy_pages_and_the_api,
    an_idp_token_becomes_a_session_on_another_instance,
    logout_on_one_instance_kills_the_session_and_its_tokens_everywhere,
    logout_everywhere_kills_only_that_users_credentials,
    route_modes_accept_what_they_should,
    shadow_mode_counts_disagreements,
    csrf_refuses_cross_site_cookie_posts_but_not_bearer_posts,
    redirects_after_login_stay_local,
    bad_session_cookies_get_401_and_create_nothing,
);
