//! The error codes in each codec-encoded answer, for `sluice_request_errors_total`: every response type a
//! handler returns implements [`ErrorCodes`], which the generic encoding glue (`api.rs`) calls once the
//! handler has answered, so requests are counted by API *and* error code for every API without each handler
//! remembering to. A response type without an impl does not compile as a handler's `Response`.
//!
//! One count per entity that carries a nonzero code: a partition in a partitioned answer, a topic, group or
//! resource in the others, and the top-level code where the answer has one. Produce and Fetch assemble their
//! own answers and count per partition where they pick the code.

use kafka_protocol::messages::{
    AlterConfigsResponse, AlterPartitionReassignmentsResponse, AlterUserScramCredentialsResponse, ApiVersionsResponse,
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, CreateAclsResponse, CreatePartitionsResponse,
    CreateTopicsResponse, DeleteAclsResponse, DeleteGroupsResponse, DeleteRecordsResponse, DeleteTopicsResponse,
    DescribeAclsResponse, DescribeClusterResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    DescribeLogDirsResponse, DescribeQuorumResponse, DescribeUserScramCredentialsResponse, FindCoordinatorResponse,
    HeartbeatResponse, IncrementalAlterConfigsResponse, InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, ListOffsetsResponse, ListPartitionReassignmentsResponse, MetadataResponse,
    OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse, OffsetForLeaderEpochResponse,
    SaslAuthenticateResponse, SaslHandshakeResponse, SyncGroupResponse,
};

/// Calls `each` with every error code in an answer (zeros included; the counter skips them).
pub trait ErrorCodes {
    fn error_codes(&self, each: &mut dyn FnMut(i16));
}

/// Answers with one top-level code only.
macro_rules! top_level {
    ($($response:ty),* $(,)?) => {$(
        impl ErrorCodes for $response {
            fn error_codes(&self, each: &mut dyn FnMut(i16)) {
                each(self.error_code);
            }
        }
    )*};
}

top_level!(
    ApiVersionsResponse,
    ConsumerGroupHeartbeatResponse,
    DescribeClusterResponse,
    HeartbeatResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    ListGroupsResponse,
    SyncGroupResponse,
    ListPartitionReassignmentsResponse,
    DescribeAclsResponse,
    DescribeUserScramCredentialsResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
);

/// Answers whose codes sit on each element of one list (topics, groups, resources).
macro_rules! per_element {
    ($($response:ty => $list:ident),* $(,)?) => {$(
        impl ErrorCodes for $response {
            fn error_codes(&self, each: &mut dyn FnMut(i16)) {
                self.$list.iter().for_each(|element| each(element.error_code));
            }
        }
    )*};
}

per_element!(
    AlterConfigsResponse => responses,
    IncrementalAlterConfigsResponse => responses,
    ConsumerGroupDescribeResponse => groups,
    DescribeGroupsResponse => groups,
    CreatePartitionsResponse => results,
    CreateTopicsResponse => topics,
    DeleteGroupsResponse => results,
    DeleteTopicsResponse => responses,
    DescribeConfigsResponse => results,
    CreateAclsResponse => results,
    DeleteAclsResponse => filter_results,
    AlterUserScramCredentialsResponse => results,
);

/// Answers whose codes sit on each partition of each topic, with or without a top-level code.
macro_rules! per_partition {
    ($($response:ty => $topics:ident, top_level: $top:tt),* $(,)?) => {$(
        impl ErrorCodes for $response {
            fn error_codes(&self, each: &mut dyn FnMut(i16)) {
                per_partition!(@top $top, self, each);
                for topic in &self.$topics {
                    topic.partitions.iter().for_each(|partition| each(partition.error_code));
                }
            }
        }
    )*};
    (@top true, $self:ident, $each:ident) => { $each($self.error_code) };
    (@top false, $self:ident, $each:ident) => {};
}

per_partition!(
    AlterPartitionReassignmentsResponse => responses, top_level: true,
    DeleteRecordsResponse => topics, top_level: false,
    DescribeQuorumResponse => topics, top_level: true,
    ListOffsetsResponse => topics, top_level: false,
    OffsetCommitResponse => topics, top_level: false,
    OffsetDeleteResponse => topics, top_level: true,
    OffsetForLeaderEpochResponse => topics, top_level: false,
);

impl ErrorCodes for DescribeLogDirsResponse {
    fn error_codes(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        self.results.iter().for_each(|dir| each(dir.error_code));
    }
}

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for topic in &self.topics {
            each(topic.error_code);
            topic.partitions.iter().for_each(|partition| each(partition.error_code));
        }
    }
}

impl ErrorCodes for FindCoordinatorResponse {
    fn error_codes(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        self.coordinators.iter().for_each(|coordinator| each(coordinator.error_code));
    }
}

impl ErrorCodes for LeaveGroupResponse {
    fn error_codes(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        self.members.iter().for_each(|member| each(member.error_code));
    }
}

/// OffsetFetch answers in one of two shapes: v0-7 one group (a top-level code and per-partition codes), v8+
/// a list of groups, each with its code and its partitions'.
impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for topic in &self.topics {
            topic.partitions.iter().for_each(|partition| each(partition.error_code));
        }
        for group in &self.groups {
            each(group.error_code);
            for topic in &group.topics {
                topic.partitions.iter().for_each(|partition| each(partition.error_code));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };

    use super::*;

    fn codes(response: &dyn ErrorCodes) -> Vec<i16> {
        let mut codes = Vec::new();
        response.error_codes(&mut |code| codes.push(code));
        codes
    }

    #[test]
    fn every_level_of_a_metadata_answer_is_visited() {
        let partition = |code| MetadataResponsePartition::default().with_error_code(code);
        let response = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default().with_error_code(3),
            MetadataResponseTopic::default().with_partitions(vec![partition(0), partition(6)]),
        ]);
        assert_eq!(codes(&response), vec![0, 3, 0, 0, 6]);
    }

    #[test]
    fn offset_fetch_codes_are_found_in_the_grouped_shape() {
        let response = OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
            .with_error_code(16)
            .with_topics(vec![OffsetFetchResponseTopics::default()
                .with_partitions(vec![OffsetFetchResponsePartitions::default().with_error_code(3)])])]);
        assert_eq!(codes(&response), vec![0, 16, 3]);
    }
}
