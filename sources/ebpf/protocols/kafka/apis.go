package kafka

// The formats of the API keys that clients send in a produce/consume
// cycle, at every version up to `max`, from the Kafka protocol's message
// definitions. JSON keys are the definitions' field names in snake case,
// as Pixie shows them (a partition's number is "index" everywhere, a
// topic's "name", a record set "message_set").

const (
	keyProduce          = 0
	keyFetch            = 1
	keyListOffsets      = 2
	keyMetadata         = 3
	keyOffsetCommit     = 8
	keyOffsetFetch      = 9
	keyFindCoordinator  = 10
	keyJoinGroup        = 11
	keyHeartbeat        = 12
	keyLeaveGroup       = 13
	keySyncGroup        = 14
	keyDescribeGroups   = 15
	keyListGroups       = 16
	keySaslHandshake    = 17
	keyApiVersions      = 18
	keyCreateTopics     = 19
	keyDeleteTopics     = 20
	keyInitProducerID   = 22
	keyOffsetForLeader  = 23
	keySaslAuthenticate = 36
)

// Fields every response of these APIs has in common.
var (
	throttle = f("throttle_time_ms", tInt32)
	errCode  = f("error_code", tInt16)
	index    = f("index", tInt32)
	// A topic named up to vLast and known by its id after.
	topicName = func(last int16) field { return f("name", tString).upto(last) }
	topicID   = func(first int16) field { return f("topic_id", tUUID).from(first).with(hResolve) }
)

var apiList = []api{
	{key: keyProduce, name: "Produce", max: 13, flexible: 9,
		req: []field{
			f("transactional_id", tString).from(3),
			f("acks", tInt16).with(hAcks),
			f("timeout_ms", tInt32),
			a("topics", topicName(12), topicID(13),
				a("partitions", index, f("message_set", tRecords))),
		},
		resp: []field{
			a("topics", topicName(12), topicID(13),
				a("partitions", index, errCode,
					f("base_offset", tInt64),
					f("log_append_time_ms", tInt64).from(2),
					f("log_start_offset", tInt64).from(5),
					a("record_errors", f("batch_index", tInt32), f("error_message", tString)).from(8),
					f("error_message", tString).from(8))),
			throttle.from(1),
		}},
	{key: keyFetch, name: "Fetch", max: 18, flexible: 12,
		req: []field{
			f("replica_id", tInt32).upto(14),
			f("max_wait_ms", tInt32),
			f("min_bytes", tInt32),
			f("max_bytes", tInt32).from(3),
			f("isolation_level", tInt8).from(4),
			f("session_id", tInt32).from(7),
			f("session_epoch", tInt32).from(7),
			a("topics", topicName(12), topicID(13),
				a("partitions", index,
					f("current_leader_epoch", tInt32).from(9),
					f("fetch_offset", tInt64),
					f("last_fetched_epoch", tInt32).from(12),
					f("log_start_offset", tInt64).from(5),
					f("partition_max_bytes", tInt32))),
			a("forgotten_topics", topicName(12), topicID(13), l("partitions", tInt32)).from(7),
			f("rack_id", tString).from(11),
		},
		resp: []field{
			throttle.from(1),
			errCode.from(7),
			f("session_id", tInt32).from(7),
			a("topics", topicName(12), topicID(13),
				a("partitions", index, errCode,
					f("high_watermark", tInt64),
					f("last_stable_offset", tInt64).from(4),
					f("log_start_offset", tInt64).from(5),
					a("aborted_transactions", f("producer_id", tInt64), f("first_offset", tInt64)).from(4),
					f("preferred_read_replica", tInt32).from(11),
					f("message_set", tRecords))),
		}},
	{key: keyListOffsets, name: "ListOffsets", max: 11, flexible: 6,
		req: []field{
			f("replica_id", tInt32),
			f("isolation_level", tInt8).from(2),
			a("topics", f("name", tString),
				a("partitions", index,
					f("current_leader_epoch", tInt32).from(4),
					f("timestamp", tInt64),
					f("max_num_offsets", tInt32).upto(0))),
			f("timeout_ms", tInt32).from(10),
		},
		resp: []field{
			throttle.from(2),
			a("topics", f("name", tString),
				a("partitions", index, errCode,
					l("old_style_offsets", tInt64).upto(0),
					f("timestamp", tInt64).from(1),
					f("offset", tInt64).from(1),
					f("leader_epoch", tInt32).from(4))),
		}},
	{key: keyMetadata, name: "Metadata", max: 13, flexible: 9,
		req: []field{
			a("topics", f("topic_id", tUUID).from(10), f("name", tString)),
			f("allow_auto_topic_creation", tBool).from(4),
			f("include_cluster_authorized_operations", tBool).only(8, 10),
			f("include_topic_authorized_operations", tBool).from(8),
		},
		resp: []field{
			throttle.from(3),
			a("brokers", f("node_id", tInt32), f("host", tString), f("port", tInt32), f("rack", tString).from(1)),
			f("cluster_id", tString).from(2),
			f("controller_id", tInt32).from(1),
			a("topics", errCode,
				f("name", tString).with(hTopicName),
				f("topic_id", tUUID).from(10).with(hTopicID),
				f("is_internal", tBool).from(1),
				a("partitions", errCode, index,
					f("leader_id", tInt32),
					f("leader_epoch", tInt32).from(7),
					l("replica_nodes", tInt32),
					l("isr_nodes", tInt32),
					l("offline_replicas", tInt32).from(5)),
				f("topic_authorized_operations", tInt32).from(8)),
			f("cluster_authorized_operations", tInt32).only(8, 10),
			errCode.from(13),
		}},
	{key: keyOffsetCommit, name: "OffsetCommit", max: 10, flexible: 8,
		req: []field{
			f("group_id", tString),
			f("generation_id", tInt32).from(1),
			f("member_id", tString).from(1),
			f("group_instance_id", tString).from(7),
			f("retention_time_ms", tInt64).only(2, 4),
			a("topics", topicName(9), topicID(10),
				a("partitions", index,
					f("committed_offset", tInt64),
					f("commit_timestamp", tInt64).only(1, 1),
					f("committed_leader_epoch", tInt32).from(6),
					f("committed_metadata", tString))),
		},
		resp: []field{
			throttle.from(3),
			a("topics", topicName(9), topicID(10), a("partitions", index, errCode)),
		}},
	{key: keyOffsetFetch, name: "OffsetFetch", max: 10, flexible: 6,
		req: []field{
			f("group_id", tString).upto(7),
			a("topics", f("name", tString), l("partition_indexes", tInt32)).upto(7),
			a("groups", f("group_id", tString),
				f("member_id", tString).from(9),
				f("member_epoch", tInt32).from(9),
				a("topics", topicName(9), topicID(10), l("partition_indexes", tInt32))).from(8),
			f("require_stable", tBool).from(7),
		},
		resp: []field{
			throttle.from(3),
			a("topics", f("name", tString), offsetFetchPartitions(5)).upto(7),
			errCode.only(2, 7),
			a("groups", f("group_id", tString),
				a("topics", topicName(9), topicID(10), offsetFetchPartitions(8)),
				errCode).from(8),
		}},
	{key: keyFindCoordinator, name: "FindCoordinator", max: 6, flexible: 3,
		req: []field{
			f("key", tString).upto(3),
			f("key_type", tInt8).from(1),
			l("coordinator_keys", tString).from(4),
		},
		resp: []field{
			throttle.from(1),
			errCode.upto(3),
			f("error_message", tString).only(1, 3),
			f("node_id", tInt32).upto(3),
			f("host", tString).upto(3),
			f("port", tInt32).upto(3),
			a("coordinators", f("key", tString), f("node_id", tInt32), f("host", tString), f("port", tInt32),
				errCode, f("error_message", tString)).from(4),
		}},
	{key: keyJoinGroup, name: "JoinGroup", max: 9, flexible: 6,
		req: []field{
			f("group_id", tString),
			f("session_timeout_ms", tInt32),
			f("rebalance_timeout_ms", tInt32).from(1),
			f("member_id", tString),
			f("group_instance_id", tString).from(5),
			f("protocol_type", tString),
			a("protocols", f("protocol", tString), f("metadata", tSubscr)),
			f("reason", tString).from(8),
		},
		resp: []field{
			throttle.from(2),
			errCode,
			f("generation_id", tInt32),
			f("protocol_type", tString).from(7),
			f("protocol_name", tString),
			f("leader", tString),
			f("skip_assignment", tBool).from(9),
			f("member_id", tString),
			a("members", f("member_id", tString), f("group_instance_id", tString).from(5), f("metadata", tSubscr)),
		}},
	{key: keyHeartbeat, name: "Heartbeat", max: 4, flexible: 4,
		req: []field{
			f("group_id", tString),
			f("generation_id", tInt32),
			f("member_id", tString),
			f("group_instance_id", tString).from(3),
		},
		resp: []field{throttle.from(1), errCode}},
	{key: keyLeaveGroup, name: "LeaveGroup", max: 5, flexible: 4,
		req: []field{
			f("group_id", tString),
			f("member_id", tString).upto(2),
			a("members", f("member_id", tString), f("group_instance_id", tString), f("reason", tString).from(5)).from(3),
		},
		resp: []field{
			throttle.from(1),
			errCode,
			a("members", f("member_id", tString), f("group_instance_id", tString), errCode).from(3),
		}},
	{key: keySyncGroup, name: "SyncGroup", max: 5, flexible: 4,
		req: []field{
			f("group_id", tString),
			f("generation_id", tInt32),
			f("member_id", tString),
			f("group_instance_id", tString).from(3),
			f("protocol_type", tString).from(5),
			f("protocol_name", tString).from(5),
			a("assignments", f("member_id", tString), f("assignment", tAssign)),
		},
		resp: []field{
			throttle.from(1),
			errCode,
			f("protocol_type", tString).from(5),
			f("protocol_name", tString).from(5),
			f("assignment", tAssign),
		}},
	{key: keyDescribeGroups, name: "DescribeGroups", max: 6, flexible: 5,
		req: []field{
			l("groups", tString),
			f("include_authorized_operations", tBool).from(3),
		},
		resp: []field{
			throttle.from(1),
			a("groups", errCode,
				f("error_message", tString).from(6),
				f("group_id", tString),
				f("group_state", tString),
				f("protocol_type", tString),
				f("protocol_data", tString),
				a("members", f("member_id", tString),
					f("group_instance_id", tString).from(4),
					f("client_id", tString),
					f("client_host", tString),
					f("member_metadata", tSubscr),
					f("member_assignment", tAssign)),
				f("authorized_operations", tInt32).from(3)),
		}},
	{key: keyListGroups, name: "ListGroups", max: 5, flexible: 3,
		req: []field{
			l("states_filter", tString).from(4),
			l("types_filter", tString).from(5),
		},
		resp: []field{
			throttle.from(1),
			errCode,
			a("groups", f("group_id", tString), f("protocol_type", tString),
				f("group_state", tString).from(4), f("group_type", tString).from(5)),
		}},
	{key: keySaslHandshake, name: "SaslHandshake", max: 1, flexible: -1,
		req:  []field{f("mechanism", tString)},
		resp: []field{errCode, l("mechanisms", tString)}},
	{key: keyApiVersions, name: "ApiVersions", max: 5, flexible: 3,
		req: []field{
			f("client_software_name", tString).from(3),
			f("client_software_version", tString).from(3),
			f("cluster_id", tString).from(5),
			f("node_id", tInt32).from(5),
		},
		resp: []field{
			errCode,
			a("api_keys", f("api_key", tInt16), f("min_version", tInt16), f("max_version", tInt16)),
			throttle.from(1),
		}},
	{key: keyCreateTopics, name: "CreateTopics", max: 7, flexible: 5,
		req: []field{
			a("topics", f("name", tString),
				f("num_partitions", tInt32),
				f("replication_factor", tInt16),
				a("assignments", index, l("broker_ids", tInt32)),
				a("configs", f("name", tString), f("value", tString))),
			f("timeout_ms", tInt32),
			f("validate_only", tBool).from(1),
		},
		resp: []field{
			throttle.from(2),
			a("topics", f("name", tString).with(hTopicName),
				f("topic_id", tUUID).from(7).with(hTopicID),
				errCode,
				f("error_message", tString).from(1),
				f("num_partitions", tInt32).from(5),
				f("replication_factor", tInt16).from(5),
				a("configs", f("name", tString), f("value", tString), f("read_only", tBool),
					f("config_source", tInt8), f("is_sensitive", tBool)).from(5)),
		}},
	{key: keyDeleteTopics, name: "DeleteTopics", max: 6, flexible: 4,
		req: []field{
			l("topic_names", tString).upto(5),
			a("topics", f("name", tString), f("topic_id", tUUID)).from(6),
			f("timeout_ms", tInt32),
		},
		resp: []field{
			throttle.from(1),
			a("responses", f("name", tString), f("topic_id", tUUID).from(6), errCode,
				f("error_message", tString).from(5)),
		}},
	{key: keyInitProducerID, name: "InitProducerId", max: 5, flexible: 2,
		req: []field{
			f("transactional_id", tString),
			f("transaction_timeout_ms", tInt32),
			f("producer_id", tInt64).from(3),
			f("producer_epoch", tInt16).from(3),
		},
		resp: []field{throttle, errCode, f("producer_id", tInt64), f("producer_epoch", tInt16)}},
	{key: keyOffsetForLeader, name: "OffsetForLeaderEpoch", max: 4, flexible: 4,
		req: []field{
			f("replica_id", tInt32).from(3),
			a("topics", f("name", tString),
				a("partitions", index, f("current_leader_epoch", tInt32).from(2), f("leader_epoch", tInt32))),
		},
		resp: []field{
			throttle.from(2),
			a("topics", f("name", tString),
				a("partitions", errCode, index, f("leader_epoch", tInt32).from(1), f("end_offset", tInt64))),
		}},
	{key: keySaslAuthenticate, name: "SaslAuthenticate", max: 2, flexible: 2,
		req: []field{f("auth_bytes", tBytes)},
		resp: []field{errCode, f("error_message", tString), f("auth_bytes", tBytes),
			f("session_lifetime_ms", tInt64).from(1)}},
}

// offsetFetchPartitions are an OffsetFetch response's partitions, with
// their leader epoch from version epoch on.
func offsetFetchPartitions(epoch int16) field {
	return a("partitions", index,
		f("committed_offset", tInt64),
		f("committed_leader_epoch", tInt32).from(epoch),
		f("metadata", tString),
		errCode)
}

// The consumer protocol's structures, carried as bytes in JoinGroup
// (the members' subscriptions) and SyncGroup (their assignments).
const (
	subscrMax = 3
	assignMax = 3
)

var subscription = []field{
	l("topics", tString),
	f("user_data", tBytes),
	a("owned_partitions", f("name", tString), l("partitions", tInt32)).from(1),
	f("generation_id", tInt32).from(2),
	f("rack_id", tString).from(3),
}

var assignment = []field{
	a("assigned_partitions", f("name", tString), l("partitions", tInt32)),
	f("user_data", tBytes),
}
