package types

import "fmt"

// SemanticType says what a column's values mean (a duration, a pod name,
// bytes); it changes how values are shown, never the values. The numbering
// matches Pixie's px.api.vizierpb.SemanticType.
type SemanticType int32

const (
	STUnspecified          SemanticType = 0
	STNone                 SemanticType = 1
	STTimeNS               SemanticType = 2
	STAgentUID             SemanticType = 100
	STASID                 SemanticType = 101
	STUPID                 SemanticType = 200
	STServiceName          SemanticType = 300
	STPodName              SemanticType = 400
	STPodPhase             SemanticType = 401
	STPodStatus            SemanticType = 402
	STNodeName             SemanticType = 500
	STContainerName        SemanticType = 600
	STContainerState       SemanticType = 601
	STContainerStatus      SemanticType = 602
	STNamespaceName        SemanticType = 700
	STBytes                SemanticType = 800
	STPercent              SemanticType = 900
	STDurationNS           SemanticType = 901
	STThroughputPerNS      SemanticType = 902
	STThroughputBytesPerNS SemanticType = 903
	STQuantiles            SemanticType = 1000
	STDurationNSQuantiles  SemanticType = 1001
	STIPAddress            SemanticType = 1100
	STPort                 SemanticType = 1200
	STHTTPReqMethod        SemanticType = 1300
	STHTTPRespStatus       SemanticType = 1400
	STHTTPRespMessage      SemanticType = 1500
	STScriptReference      SemanticType = 3000
)

var semanticNames = map[SemanticType]string{
	STUnspecified: "ST_UNSPECIFIED", STNone: "ST_NONE", STTimeNS: "ST_TIME_NS",
	STAgentUID: "ST_AGENT_UID", STASID: "ST_ASID", STUPID: "ST_UPID",
	STServiceName: "ST_SERVICE_NAME", STPodName: "ST_POD_NAME", STPodPhase: "ST_POD_PHASE",
	STPodStatus: "ST_POD_STATUS", STNodeName: "ST_NODE_NAME", STContainerName: "ST_CONTAINER_NAME",
	STContainerState: "ST_CONTAINER_STATE", STContainerStatus: "ST_CONTAINER_STATUS",
	STNamespaceName: "ST_NAMESPACE_NAME", STBytes: "ST_BYTES", STPercent: "ST_PERCENT",
	STDurationNS: "ST_DURATION_NS", STThroughputPerNS: "ST_THROUGHPUT_PER_NS",
	STThroughputBytesPerNS: "ST_THROUGHPUT_BYTES_PER_NS", STQuantiles: "ST_QUANTILES",
	STDurationNSQuantiles: "ST_DURATION_NS_QUANTILES", STIPAddress: "ST_IP_ADDRESS",
	STPort: "ST_PORT", STHTTPReqMethod: "ST_HTTP_REQ_METHOD", STHTTPRespStatus: "ST_HTTP_RESP_STATUS",
	STHTTPRespMessage: "ST_HTTP_RESP_MESSAGE", STScriptReference: "ST_SCRIPT_REFERENCE",
}

func (s SemanticType) String() string {
	if n, ok := semanticNames[s]; ok {
		return n
	}
	return fmt.Sprintf("SemanticType(%d)", int32(s))
}

// ParseSemanticType parses a name as printed by String.
func ParseSemanticType(name string) (SemanticType, error) {
	for s, n := range semanticNames {
		if n == name {
			return s, nil
		}
	}
	return STUnspecified, fmt.Errorf("unknown semantic type %q", name)
}
