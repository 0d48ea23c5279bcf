package metadata

import "testing"

func TestParseCgroupPath(t *testing.T) {
	const id = "3f1a9e0c2b7d4e5f8a6b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
	const uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
	const uidUnderscored = "1b4e28ba_2fa1_11d2_883f_0016d3cca427"
	cases := []struct {
		path string
		want CgroupInfo
	}{
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnderscored + ".slice/cri-containerd-" + id + ".scope",
			CgroupInfo{id, "containerd", uid}},
		{"/kubepods.slice/kubepods-pod" + uidUnderscored + ".slice/crio-" + id + ".scope", CgroupInfo{id, "cri-o", uid}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidUnderscored + ".slice/docker-" + id + ".scope",
			CgroupInfo{id, "docker", uid}},
		{"/kubepods/burstable/pod" + uid + "/" + id, CgroupInfo{id, "", uid}},
		{"/kubepods/pod" + uid + "/" + id, CgroupInfo{id, "", uid}},
		{"/kubepods/besteffort/pod" + uid, CgroupInfo{"", "", uid}},
		{"/../../kubepods-besteffort-pod" + uidUnderscored + ".slice/cri-containerd-" + id + ".scope", CgroupInfo{id, "containerd", uid}},
		{"/kubepods-besteffort-pod" + uidUnderscored + ".slice:cri-containerd:" + id, CgroupInfo{id, "containerd", uid}},
		{"/kubepods.slice/kubepods-pod" + uidUnderscored + ".slice/crio-conmon-" + id + ".scope", CgroupInfo{"", "", uid}},
		{"/system.slice/docker-" + id + ".scope", CgroupInfo{id, "docker", ""}},
		{"/docker/" + id, CgroupInfo{id, "docker", ""}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnderscored + ".slice/cri-containerd-" + id + ".scope/init.scope",
			CgroupInfo{id, "containerd", uid}},
		{"/user.slice/user-0.slice/session-1.scope", CgroupInfo{}},
		{"/", CgroupInfo{}},
		{"/process_api/3a555c1f98b5827573a63898d13b811d", CgroupInfo{}},
	}
	for _, c := range cases {
		if got := ParseCgroupPath(c.path); got != c.want {
			t.Errorf("ParseCgroupPath(%q) = %+v, want %+v", c.path, got, c.want)
		}
	}
}

func TestParseProcCgroupHybrid(t *testing.T) {
	const id = "3f1a9e0c2b7d4e5f8a6b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
	text := "9:name=systemd:/\n4:memory:/kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/" + id + "\n0::/\n"
	got := ParseProcCgroup(text)
	if got.ContainerID != id || got.PodUID != "1b4e28ba-2fa1-11d2-883f-0016d3cca427" {
		t.Fatalf("ParseProcCgroup = %+v", got)
	}
}
