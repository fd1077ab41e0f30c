// kubelet-api of Kubernetes 1.37: the CRI streaming server's port-forward handler
// (k8s.io/cri-streaming), WebSocket tunnelling at the kubelet (ExtendWebSocketsToKubelet)
// and node declared features.
package main

import (
	"context"
	"io"
	"net/http"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	versionutil "k8s.io/apimachinery/pkg/util/version"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/version"
	"k8s.io/component-helpers/nodedeclaredfeatures"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/kubernetes/pkg/features"
	"kftray.test/kubeletapi"
)

func main() { kubeletapi.Main(release{}) }

type release struct{}

type forwarder struct{ kubeletapi.Forwarder }

func (f forwarder) PortForward(ctx context.Context, name string, uid string, port int32, stream io.ReadWriteCloser) error {
	return f.Forward(ctx, name, uid, port, stream)
}

// ServePortForward is the kubelet's getPortForward from here on: WebSocket requests that ask
// for SPDY tunnelling are unwrapped by the API server's own tunnelling handler, as the
// kubelet does since ExtendWebSocketsToKubelet; the rest go to the CRI streaming server's
// handler (SPDY/3.1 and v4.channel.k8s.io).
func (release) ServePortForward(w http.ResponseWriter, req *http.Request, f kubeletapi.Forwarder, key, uid string) {
	tunnel := utilfeature.DefaultFeatureGate.Enabled(features.ExtendWebSocketsToKubelet) &&
		wsstream.IsWebSocketRequestWithTunnelingProtocol(req)
	options := &portforward.V4Options{}
	if !tunnel {
		var err error
		if options, err = portforward.NewV4Options(req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		portforward.ServePortForward(w, req, forwarder{f}, key, uid, options,
			kubeletapi.IdleTimeout, kubeletapi.StreamCreationTimeout, portforward.SupportedProtocols)
	})
	if tunnel {
		handler = translator.NewTunnelingHandler(handler)
	}
	handler.ServeHTTP(w, req)
}

type gates struct{ featuregate.FeatureGate }

func (g gates) Enabled(key string) bool { return g.FeatureGate.Enabled(featuregate.Feature(key)) }

// DeclareFeatures as the kubelet's discoverNodeDeclaredFeatures, from this release's
// default feature gates.
func (release) DeclareFeatures(status *v1.NodeStatus) {
	if !utilfeature.DefaultFeatureGate.Enabled(features.NodeDeclaredFeatures) {
		return
	}
	v, err := versionutil.Parse(version.Get().String())
	if err != nil {
		return
	}
	status.DeclaredFeatures = nodedeclaredfeatures.DefaultFramework.DiscoverNodeFeatures(&nodedeclaredfeatures.NodeConfiguration{
		FeatureGates: gates{utilfeature.DefaultFeatureGate},
		Version:      v,
	})
}
