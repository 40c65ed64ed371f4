//! aws-sdk-php's DynamoDB session items on moto.
