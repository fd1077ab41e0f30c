// Package kubeletapi is the node half of the test cluster's kubelet: it registers the Nodes,
// keeps their Ready condition and Leases fresh, declares the node features a kubelet of its
// Kubernetes release declares, and serves the kubelet API's /portForward with Kubernetes' own
// streaming code. The pods themselves run in kftray's Rust pod runtime (tests/controlplane),
// which reports their status; this package reads their IPs from the API server.
//
// What differs between releases (the streaming package, node declared features) comes from
// the kubelet-api main package of each pinned release (../k8s-<version>/kubelet-api).
package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// As the kubelet's defaults: --streaming-connection-idle-timeout and the CRI streaming
// server's stream creation timeout.
const (
	IdleTimeout           = 4 * time.Hour
	StreamCreationTimeout = 30 * time.Second
	leaseSeconds          = 40
	renewEvery            = 10 * time.Second
)

type node struct {
	name, ip, podCIDR string
}

type nodeList []node

func (n *nodeList) String() string { return fmt.Sprint(*n) }

func (n *nodeList) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 3 || net.ParseIP(parts[1]) == nil {
		return fmt.Errorf("--node wants NAME,IP,POD_CIDR, got %q", s)
	}
	*n = append(*n, node{parts[0], parts[1], parts[2]})
	return nil
}

// Release is what one Kubernetes release's kubelet does its own way.
type Release interface {
	// ServePortForward serves a /portForward request for the pod `key` (namespace/name)
	// with that release's streaming code, as its kubelet does.
	ServePortForward(w http.ResponseWriter, req *http.Request, forwarder Forwarder, key, uid string)
	// DeclareFeatures fills status.declaredFeatures as that release's kubelet does (1.35+).
	DeclareFeatures(status *v1.NodeStatus)
	// SetFeatureGates applies --feature-gates (A=true,B=false) to that release's gates.
	SetFeatureGates(gates string) error
}

// Forwarder connects a port-forward stream to a port of a pod.
type Forwarder interface {
	Forward(ctx context.Context, key, uid string, port int32, stream io.ReadWriteCloser) error
}

// Main parses the flags and serves until SIGINT or SIGTERM.
func Main(release Release) {
	var nodes nodeList
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of this kubelet's identity")
	port := flag.Int("port", 10250, "kubelet API port on every node IP")
	certFile := flag.String("tls-cert-file", "", "serving certificate")
	keyFile := flag.String("tls-private-key-file", "", "serving key")
	clientCA := flag.String("client-ca-file", "", "CA of the API server's kubelet client certificate")
	flag.Var(&nodes, "node", "NAME,IP,POD_CIDR of a Node to register (repeatable)")
	gates := flag.String("feature-gates", "", "A=true,B=false: the kubelet's feature gates of this release")
	klog.InitFlags(nil)
	flag.Parse()
	if *gates != "" {
		if err := release.SetFeatureGates(*gates); err != nil {
			fmt.Fprintln(os.Stderr, "kubelet-api: --feature-gates:", err)
			os.Exit(2)
		}
	}
	if len(nodes) == 0 || *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "kubelet-api: --kubeconfig and at least one --node are required")
		os.Exit(2)
	}
	if err := run(release, nodes, *kubeconfig, *port, *certFile, *keyFile, *clientCA); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-api:", err)
		os.Exit(1)
	}
}

func run(release Release, nodes nodeList, kubeconfig string, port int, certFile, keyFile, clientCA string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	config.UserAgent = "kubelet-api/" + version.Get().GitVersion
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	tlsConfig, err := serving(certFile, keyFile, clientCA)
	if err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		return errors.New("pod informer never synced")
	}
	mine := map[string]bool{}
	for _, n := range nodes {
		mine[n.name] = true
	}
	api := &kubeletAPI{pods: pods.GetIndexer(), nodes: mine, release: release}

	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		ln, err := net.Listen("tcp", net.JoinHostPort(n.ip, fmt.Sprint(port)))
		if err != nil {
			return err
		}
		server := &http.Server{Handler: api.mux(), TLSConfig: tlsConfig, ReadHeaderTimeout: 30 * time.Second}
		go func() { errc <- server.ServeTLS(ln, "", "") }()
		go func() { <-ctx.Done(); _ = server.Close() }()
	}
	for _, n := range nodes {
		if err := register(ctx, client, release, n, port); err != nil {
			return fmt.Errorf("registering node %s: %w", n.name, err)
		}
		go keepAlive(ctx, client, release, n, port)
	}
	fmt.Printf("kubelet-api: serving %d node(s) on port %d\n", len(nodes), port)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func serving(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", clientCA)
		}
		// As a kubelet run with --anonymous-auth=false: only the API server gets in.
		config.ClientCAs = pool
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return config, nil
}

type kubeletAPI struct {
	pods    cache.Indexer
	nodes   map[string]bool
	release Release
}

func (k *kubeletAPI) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/portForward/", k.portForward)
	return mux
}

// portForward serves /portForward/{namespace}/{pod}[/{uid}] as the kubelet's getPortForward
// does: the pod must be on this node (and have that uid), then the upstream streaming code
// takes over.
func (k *kubeletAPI) portForward(w http.ResponseWriter, req *http.Request) {
	parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/portForward/"), "/")
	if len(parts) < 2 || len(parts) > 3 {
		http.Error(w, "want /portForward/{namespace}/{pod}[/{uid}]", http.StatusNotFound)
		return
	}
	pod := k.pod(parts[0], parts[1])
	if pod == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return
	}
	if len(parts) == 3 && parts[2] != string(pod.UID) {
		http.Error(w, "pod not found", http.StatusNotFound)
		return
	}
	k.release.ServePortForward(w, req, &forwarder{k}, pod.Namespace+"/"+pod.Name, string(pod.UID))
}

func (k *kubeletAPI) pod(namespace, name string) *v1.Pod {
	obj, ok, err := k.pods.GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	pod := obj.(*v1.Pod)
	if !k.nodes[pod.Spec.NodeName] {
		return nil
	}
	return pod
}

// forwarder is the container runtime's half: it connects to the pod's port on its IP and
// copies, as containerd's sandbox port-forward does inside the pod's network namespace.
type forwarder struct{ api *kubeletAPI }

func (f *forwarder) Forward(ctx context.Context, key string, uid string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	namespace, name, _ := strings.Cut(key, "/")
	pod := f.api.pod(namespace, name)
	if pod == nil || string(pod.UID) != uid {
		return fmt.Errorf("pod %s (uid %s) is gone", key, uid)
	}
	if pod.Status.PodIP == "" {
		return fmt.Errorf("pod %s has no IP yet", key)
	}
	var dialer net.Dialer
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(dialCtx, "tcp", net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(port)))
	if err != nil {
		return fmt.Errorf("failed to connect to localhost:%d inside namespace %q: %w", port, key, err)
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stream)
		// The client's half-close reaches the pod.
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, conn)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func register(ctx context.Context, client kubernetes.Interface, release Release, n node, port int) error {
	want := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				"kubernetes.io/hostname": n.name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Spec: v1.NodeSpec{PodCIDR: n.podCIDR, PodCIDRs: []string{n.podCIDR}},
	}
	_, err := client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return updateStatus(ctx, client, release, n, port)
}

func updateStatus(ctx context.Context, client kubernetes.Interface, release Release, n node, port int) error {
	current, err := client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	quantities := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("8"),
		v1.ResourceMemory: resource.MustParse("32Gi"),
		v1.ResourcePods:   resource.MustParse("250"),
	}
	condition := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, message string) v1.NodeCondition {
		since := now
		for _, c := range current.Status.Conditions {
			if c.Type == t && c.Status == s {
				since = c.LastTransitionTime
			}
		}
		return v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: message, LastHeartbeatTime: now, LastTransitionTime: since}
	}
	current.Status = v1.NodeStatus{
		Capacity:    quantities,
		Allocatable: quantities,
		Phase:       v1.NodeRunning,
		Conditions: []v1.NodeCondition{
			condition(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			condition(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			condition(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			condition(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: n.ip},
			{Type: v1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: int32(port)}},
		NodeInfo: v1.NodeSystemInfo{
			MachineID:               n.name,
			SystemUUID:              n.name,
			BootID:                  bootID,
			KernelVersion:           kernel(),
			OSImage:                 "kftray test node (local processes)",
			ContainerRuntimeVersion: "local://" + version.Get().GitVersion,
			KubeletVersion:          version.Get().GitVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
	release.DeclareFeatures(&current.Status)
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, current, metav1.UpdateOptions{})
	return err
}

var bootID = fmt.Sprintf("%d", time.Now().UnixNano())

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// keepAlive renews the node's Lease every 10 s and posts its status every minute, as a
// kubelet does when nothing changes.
func keepAlive(ctx context.Context, client kubernetes.Interface, release Release, n node, port int) {
	leases := client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	lastStatus := time.Now()
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, n.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			owner, gerr := client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			lease = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: v1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       ptr.To(n.name),
					LeaseDurationSeconds: ptr.To[int32](leaseSeconds),
					RenewTime:            &now,
				},
			}
			if gerr == nil {
				lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: owner.UID}}
			}
			_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		case err == nil:
			lease.Spec.RenewTime = &now
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			klog.Warningf("lease of %s: %v", n.name, err)
		}
		if time.Since(lastStatus) >= time.Minute {
			if err := updateStatus(ctx, client, release, n, port); err != nil && ctx.Err() == nil {
				klog.Warningf("status of %s: %v", n.name, err)
			} else {
				lastStatus = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(renewEvery):
		}
	}
}
