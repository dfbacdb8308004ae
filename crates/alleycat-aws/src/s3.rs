//! A bucket as an [`ObjectStore`]: conditional puts on ETags (S3's `If-Match` /
//! `If-None-Match: *`) make the history merge lost-update-free.

use std::time::Duration;

use alleycat_ports::{Object, ObjectStore, PortError, PutCondition};
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::error::classify;

/// Environment variable forcing path-style addressing on (`true`) or off (`false`).
pub const FORCE_PATH_STYLE_ENV: &str = "AWS_S3_FORCE_PATH_STYLE";

/// One bucket. Cheap to clone: the client is a handle on one connection pool.
#[derive(Clone, Debug)]
pub struct S3Objects {
    /// The SDK client.
    pub client: Client,
    /// The bucket name.
    pub bucket: String,
}

impl S3Objects {
    /// The bucket `bucket` through `client`, as configured.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket `bucket` with a client of `config`, using path-style addressing
    /// (`http://host/bucket/key`) when [`wants_path_style`] says so: local fakes such as moto
    /// cannot serve virtual-hosted buckets (`http://bucket.host/key`).
    pub fn from_conf(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(wants_path_style(config))
            .build();
        Self::new(Client::from_conf(s3_config), bucket)
    }
}

/// Whether [`S3Objects::from_conf`] addresses buckets by path: `AWS_S3_FORCE_PATH_STYLE=true`
/// forces it and `=false` forbids it; otherwise it is on exactly when the endpoint is overridden
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3` or an explicit endpoint in `config`), i.e. when
/// talking to something other than S3 itself.
pub fn wants_path_style(config: &SdkConfig) -> bool {
    let flag = std::env::var(FORCE_PATH_STYLE_ENV).ok();
    let custom_endpoint =
        config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    path_style(flag.as_deref(), custom_endpoint)
}

fn path_style(flag: Option<&str>, custom_endpoint: bool) -> bool {
    match flag.map(str::trim) {
        Some(flag) if flag.eq_ignore_ascii_case("true") || flag == "1" => true,
        Some(flag) if flag.eq_ignore_ascii_case("false") || flag == "0" => false,
        _ => custom_endpoint,
    }
}

impl ObjectStore for S3Objects {
    async fn get(&self, key: &str) -> Result<Option<Object>, PortError> {
        let operation = format!("S3 GetObject s3://{}/{key}", self.bucket);
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(classify(&operation, &error)),
        };
        let etag = output
            .e_tag
            .ok_or_else(|| PortError::Permanent(format!("{operation}: no ETag in the response")))?;
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| PortError::Transient(format!("{operation}: reading the body: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object { bytes, etag }))
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Option<PutCondition>,
    ) -> Result<String, PortError> {
        let operation = format!("S3 PutObject s3://{}/{key}", self.bucket);
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        let if_match = matches!(condition, Some(PutCondition::IfMatch(_)));
        let request = match condition {
            None => request,
            Some(PutCondition::IfMatch(etag)) => request.if_match(etag),
            Some(PutCondition::IfNoneMatch) => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(output) => output.e_tag.ok_or_else(|| {
                PortError::Permanent(format!("{operation}: no ETag in the response"))
            }),
            // `If-Match` on an object deleted since it was read: it changed, like any mismatch.
            Err(error)
                if if_match
                    && error
                        .as_service_error()
                        .and_then(ProvideErrorMetadata::code)
                        == Some("NoSuchKey") =>
            {
                Err(PortError::Conflict)
            }
            Err(error) => Err(classify(&operation, &error)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, PortError> {
        let operation = format!("S3 HeadObject s3://{}/{key}", self.bucket);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error)
                if error.as_service_error().is_some_and(
                    aws_sdk_s3::operation::head_object::HeadObjectError::is_not_found,
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(classify(&operation, &error)),
        }
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String, PortError> {
        let operation = format!("S3 presign GetObject s3://{}/{key}", self.bucket);
        let presigning = PresigningConfig::expires_in(ttl)
            .map_err(|e| PortError::Permanent(format!("{operation}: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| classify(&operation, &e))?;
        Ok(request.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_follows_the_flag_then_the_endpoint() {
        assert!(path_style(Some("true"), false));
        assert!(path_style(Some("TRUE"), false));
        assert!(path_style(Some("1"), false));
        assert!(!path_style(Some("false"), true));
        assert!(!path_style(Some("0"), true));
        assert!(path_style(None, true));
        assert!(!path_style(None, false));
        assert!(path_style(Some(""), true));
    }
}
