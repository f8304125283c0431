//! DynamoDB adapters.

use aws_sdk_dynamodb::types::AttributeValue;

use super::StoreError;

/// A counter attribute: a non-negative whole number.
pub(crate) fn read_count(value: &AttributeValue) -> Result<u64, StoreError> {
    let raw = value
        .as_n()
        .map_err(|_| StoreError::Corrupt(format!("counter is not a number: {value:?}")))?;
    let n: i64 = raw
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("counter is not a whole number: {raw}")))?;
    // A negative counter would be a bug elsewhere; clamp for the reader, log for us.
    if n < 0 {
        tracing::error!(counter = n, "negative unread counter");
    }
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_that_is_not_a_number_is_reported_as_corrupt() {
        assert!(matches!(
            read_count(&AttributeValue::S("x".into())),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            read_count(&AttributeValue::N("1.5".into())),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(read_count(&AttributeValue::N("7".into())).unwrap(), 7);
    }
}
