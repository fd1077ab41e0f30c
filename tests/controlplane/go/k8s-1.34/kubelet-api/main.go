// kubelet-api of Kubernetes 1.34: the kubelet's own CRI streaming port-forward handler
// (k8s.io/kubelet/pkg/cri/streaming); the API server tunnels WebSockets itself and a 1.34
// kubelet declares no node features.
package main

import (
	"context"
	"io"
	"net/http"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/kubelet/pkg/cri/streaming/portforward"
	// The kubelet's feature gates, so --feature-gates knows them.
	_ "k8s.io/kubernetes/pkg/features"
	"kftray.test/kubeletapi"
)

func main() { kubeletapi.Main(release{}) }

type release struct{}

type forwarder struct{ kubeletapi.Forwarder }

func (f forwarder) PortForward(ctx context.Context, name string, uid types.UID, port int32, stream io.ReadWriteCloser) error {
	return f.Forward(ctx, name, string(uid), port, stream)
}

func (release) ServePortForward(w http.ResponseWriter, req *http.Request, f kubeletapi.Forwarder, key, uid string) {
	options, err := portforward.NewV4Options(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, req, forwarder{f}, key, types.UID(uid), options,
		kubeletapi.IdleTimeout, kubeletapi.StreamCreationTimeout, portforward.SupportedProtocols)
}

// A 1.34 Node has no declared features.
func (release) DeclareFeatures(*v1.NodeStatus) {}

func (release) SetFeatureGates(gates string) error {
	return utilfeature.DefaultMutableFeatureGate.Set(gates)
}
