//! The table's definition: keys, indexes, TTL, stream. The local stack and the tests create their
//! tables from here; the SAM template declares the same (a tidy test holds them together).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::error::StoreError;
use crate::keys;

/// (index name, partition key, sort key) of every global secondary index.
pub const INDEXES: [(&str, &str, &str); 5] = [
    (keys::GSI1, keys::GSI1_PK, keys::GSI1_SK),
    (keys::GSI2, keys::GSI2_PK, keys::GSI2_SK),
    // Sparse: only queued and running runs carry its keys (the reaper's deadlines).
    (keys::GSI3, keys::GSI3_PK, keys::GSI3_SK),
    (keys::GSI4, keys::GSI4_PK, keys::GSI4_SK),
    (keys::GSI5, keys::GSI5_PK, keys::GSI5_SK),
];

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| build_error("CreateTable", e))
}

fn string_attr(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| build_error("CreateTable", e))
}

fn build_error(operation: &'static str, e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo {
        operation,
        code: None,
        source: Box::new(e),
    }
}

/// Creates the table (on-demand, every index, TTL) and waits until it is usable.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        // New runs reach EventBridge as `OperationRun Queued` through the table's stream (an
        // EventBridge Pipe in AWS), so a start costs no extra call.
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(|e| build_error("CreateTable", e))?,
        )
        .key_schema(key(keys::PK, KeyType::Hash)?)
        .key_schema(key(keys::SK, KeyType::Range)?)
        .attribute_definitions(string_attr(keys::PK)?)
        .attribute_definitions(string_attr(keys::SK)?);
    for (index, pk, sk) in INDEXES {
        req = req
            .attribute_definitions(string_attr(pk)?)
            .attribute_definitions(string_attr(sk)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(pk, KeyType::Hash)?)
                    .key_schema(key(sk, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|e| build_error("CreateTable", e))?,
            );
    }
    req.send()
        .await
        .map_err(|e| StoreError::dynamo("CreateTable", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(keys::TTL)
                .enabled(true)
                .build()
                .map_err(|e| build_error("UpdateTimeToLive", e))?,
        )
        .send()
        .await
        .map_err(|e| StoreError::dynamo("UpdateTimeToLive", e))?;
    Ok(())
}
