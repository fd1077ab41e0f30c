// kubelet-api of Kubernetes 1.37: port-forward as the 1.37 kubelet serves it, proxied to a
// CRI streaming server (k8s.io/cri-streaming, as containerd runs one), with WebSocket
// tunnelling at the kubelet (ExtendWebSocketsToKubelet), and node declared features.
package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/proxy"
	versionutil "k8s.io/apimachinery/pkg/util/version"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/version"
	"k8s.io/component-helpers/nodedeclaredfeatures"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"
	"kftray.test/kubeletapi"
)

func main() { kubeletapi.Main(&release{}) }

type release struct {
	once      sync.Once
	streaming streaming.Server
	err       error
}

// runtime is the container runtime's side of the CRI streaming server. A sandbox ID here is
// the pod's namespace/name#uid, which is all the forwarder needs.
type runtime struct{ kubeletapi.Forwarder }

func (r runtime) PortForward(ctx context.Context, sandbox string, port int32, stream io.ReadWriteCloser) error {
	key, uid, _ := strings.Cut(sandbox, "#")
	return r.Forward(ctx, key, uid, port, stream)
}

func (runtime) Exec(context.Context, string, []string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommandserver.TerminalSize) error {
	return errors.New("exec is not supported by this kubelet")
}

func (runtime) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommandserver.TerminalSize) error {
	return errors.New("attach is not supported by this kubelet")
}

// start runs the CRI streaming server on a loopback port of its own, as containerd does.
func (r *release) start(f kubeletapi.Forwarder) (streaming.Server, error) {
	r.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.err = err
			return
		}
		config := streaming.DefaultConfig
		config.Addr = ln.Addr().String()
		config.StreamIdleTimeout = kubeletapi.IdleTimeout
		config.StreamCreationTimeout = kubeletapi.StreamCreationTimeout
		if r.streaming, r.err = streaming.NewServer(config, runtime{f}); r.err != nil {
			return
		}
		go func() { r.err = http.Serve(ln, r.streaming) }()
	})
	return r.streaming, r.err
}

type responder struct{}

func (responder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	klog.ErrorS(err, "Error while proxying request")
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// ServePortForward is the 1.37 kubelet's getPortForward: ask the runtime for a streaming URL
// and proxy the upgrade to it; a WebSocket that asks for SPDY tunnelling is unwrapped here
// by the API server's own tunnelling handler.
func (r *release) ServePortForward(w http.ResponseWriter, req *http.Request, f kubeletapi.Forwarder, key, uid string) {
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
	server, err := r.start(f)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := server.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: key + "#" + uid, Port: options.Ports})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	location, err := url.Parse(resp.Url)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var handler http.Handler = proxy.NewUpgradeAwareHandler(location, nil, false, true, responder{})
	if tunnel {
		handler = translator.NewTunnelingHandler(handler)
	}
	handler.ServeHTTP(w, req)
}

type gates struct{ featuregate.FeatureGate }

func (g gates) Enabled(key string) bool { return g.FeatureGate.Enabled(featuregate.Feature(key)) }

// DeclareFeatures as the kubelet's discoverNodeDeclaredFeatures, from this release's
// default feature gates.
func (*release) DeclareFeatures(status *v1.NodeStatus) {
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

func (*release) SetFeatureGates(gates string) error {
	return utilfeature.DefaultMutableFeatureGate.Set(gates)
}
