//! Verification: our own tokens (hostile-token suite included), moto's
//! Cognito tokens, and oidc-provider's tokens through discovery.

mod cognito;
mod fake_idp;
mod hostile;
mod oidc;
mod own;
mod remote;
mod support;
