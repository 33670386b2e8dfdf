//go:build tools

// Package etcd pins the command built from this module: etcd's server (package main at the
// root of go.etcd.io/etcd/server/v3).
package etcd

import _ "go.etcd.io/etcd/server/v3"
