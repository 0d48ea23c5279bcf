package funcs

import "net/http"

// Names of protocol enum values, as the socket tracer's tables store
// codes. Unknown codes give "Unknown" (or the code where noted).

func init() {
	enum := func(name, doc string, m map[int64]string) {
		register(name, doc, sig(tS, fn1(rInt, tS, func(c int64) string {
			if s, ok := m[c]; ok {
				return s
			}
			return "Unknown"
		}), tI))
	}
	enum("protocol_name", "conn_stats protocol code → name", map[int64]string{
		0: "Unknown", 1: "HTTP", 2: "HTTP2", 3: "MySQL", 4: "CQL", 5: "PGSQL", 6: "DNS", 7: "Redis",
		8: "NATS", 9: "Mongo", 10: "Kafka", 11: "Mux", 12: "AMQP", 13: "TLS",
	})
	register("http_resp_message", "HTTP status code → reason phrase", sig(tS, fn1(rInt, tS, func(c int64) string {
		if s := http.StatusText(int(c)); s != "" {
			return s
		}
		return "Unknown"
	}), tI))
	enum("dns_rcode_name", "DNS rcode → name", map[int64]string{
		0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
		6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
	})
	enum("grpc_status_code_to_str", "gRPC status code → name", map[int64]string{
		0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
		6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
		10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
		15: "DATA_LOSS", 16: "UNAUTHENTICATED",
	})
	kafka := []string{"Produce", "Fetch", "ListOffsets", "Metadata", "LeaderAndIsr", "StopReplica", "UpdateMetadata",
		"ControlledShutdown", "OffsetCommit", "OffsetFetch", "FindCoordinator", "JoinGroup", "Heartbeat", "LeaveGroup",
		"SyncGroup", "DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics", "DeleteTopics",
		"DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch", "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn",
		"WriteTxnMarkers", "TxnOffsetCommit", "DescribeAcls", "CreateAcls", "DeleteAcls", "DescribeConfigs",
		"AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate", "CreatePartitions",
		"CreateDelegationToken", "RenewDelegationToken", "ExpireDelegationToken", "DescribeDelegationToken",
		"DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs", "AlterPartitionReassignments",
		"ListPartitionReassignments", "OffsetDelete", "DescribeClientQuotas", "AlterClientQuotas",
		"DescribeUserScramCredentials", "AlterUserScramCredentials"}
	enum("kafka_api_key_name", "Kafka API key → name", indexMap(kafka))
	mysql := []string{"Sleep", "Quit", "InitDB", "Query", "FieldList", "CreateDB", "DropDB", "Refresh", "Shutdown",
		"Statistics", "ProcessInfo", "Connect", "ProcessKill", "Debug", "Ping", "Time", "DelayedInsert", "ChangeUser",
		"BinlogDump", "TableDump", "ConnectOut", "RegisterSlave", "StmtPrepare", "StmtExecute", "StmtSendLongData",
		"StmtClose", "StmtReset", "SetOption", "StmtFetch", "Daemon", "BinlogDumpGTID", "ResetConnection"}
	enum("mysql_command_name", "MySQL command code → name", indexMap(mysql))
	enum("cql_opcode_name", "CQL opcode → name", map[int64]string{
		0x00: "Error", 0x01: "Startup", 0x02: "Ready", 0x03: "Authenticate", 0x05: "Options", 0x06: "Supported",
		0x07: "Query", 0x08: "Result", 0x09: "Prepare", 0x0A: "Execute", 0x0B: "Register", 0x0C: "Event",
		0x0D: "Batch", 0x0E: "AuthChallenge", 0x0F: "AuthResponse", 0x10: "AuthSuccess",
	})
	enum("amqp_frame_type_name", "AMQP frame type → name", map[int64]string{
		1: "Method", 2: "ContentHeader", 3: "ContentBody", 8: "Heartbeat",
	})
	enum("mux_frame_type_name", "Mux frame type → name", map[int64]string{
		1: "Treq", -1: "Rreq", 2: "Tdispatch", -2: "Rdispatch", 64: "Tdrain", -64: "Rdrain", 65: "Tping",
		-65: "Rping", 66: "Tdiscarded", -66: "Rdiscarded", 67: "Tlease", 68: "Tinit", -68: "Rinit",
		-128: "Rerr", 127: "Rerr",
	})
	register("amqp_method_name", "(AMQP class id, method id) → ClassMethod name",
		sig(tS, fn2(rInt, rInt, tS, func(class, method int64) string {
			c, ok := amqpMethods[class]
			if !ok {
				return "Unknown"
			}
			m, ok := c.methods[method]
			if !ok {
				return "Unknown"
			}
			return c.name + m
		}), tI, tI))
}

func indexMap(names []string) map[int64]string {
	m := make(map[int64]string, len(names))
	for i, n := range names {
		m[int64(i)] = n
	}
	return m
}

var amqpMethods = map[int64]struct {
	name    string
	methods map[int64]string
}{
	10: {"Connection", map[int64]string{10: "Start", 11: "StartOk", 20: "Secure", 21: "SecureOk", 30: "Tune", 31: "TuneOk", 40: "Open", 41: "OpenOk", 50: "Close", 51: "CloseOk",
		60: "Blocked", 61: "Unblocked", 70: "UpdateSecret", 71: "UpdateSecretOk"}},
	20: {"Channel", map[int64]string{10: "Open", 11: "OpenOk", 20: "Flow", 21: "FlowOk", 40: "Close", 41: "CloseOk"}},
	40: {"Exchange", map[int64]string{10: "Declare", 11: "DeclareOk", 20: "Delete", 21: "DeleteOk", 30: "Bind", 31: "BindOk", 40: "Unbind", 51: "UnbindOk"}},
	50: {"Queue", map[int64]string{10: "Declare", 11: "DeclareOk", 20: "Bind", 21: "BindOk", 30: "Purge", 31: "PurgeOk", 40: "Delete", 41: "DeleteOk", 50: "Unbind", 51: "UnbindOk"}},
	60: {"Basic", map[int64]string{10: "Qos", 11: "QosOk", 20: "Consume", 21: "ConsumeOk", 30: "Cancel", 31: "CancelOk", 40: "Publish", 50: "Return", 60: "Deliver", 70: "Get", 71: "GetOk", 72: "GetEmpty", 80: "Ack", 90: "Reject", 100: "RecoverAsync", 110: "Recover", 111: "RecoverOk", 120: "Nack"}},
	85: {"Confirm", map[int64]string{10: "Select", 11: "SelectOk"}},
	90: {"Tx", map[int64]string{10: "Select", 11: "SelectOk", 20: "Commit", 21: "CommitOk", 30: "Rollback", 31: "RollbackOk"}},
}
