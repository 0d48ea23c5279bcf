package server_test

import (
	"google.golang.org/grpc"

	"github.com/pxq-dev/pxq/server/auth"
)

const testToken = "s3cret-token"

type tokenConfig struct{}

func (tokenConfig) options() ([]grpc.ServerOption, error) {
	return auth.ServerConfig{Token: testToken}.ServerOptions()
}
