// --target for Kubernetes pods and containers and lab nodes: parsing, canonical form, and the
// round trip through the wire protocol (which carries targets as str() and reads them back with
// parse_target).
#include <gtest/gtest.h>

#include <string>

#include "core/parse.h"
#include "protocol/protocol.h"

namespace fl::core {
namespace {

using namespace std::string_literals;

const std::string kUid = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9";
const std::string kId = "3b7e1f0c9a8d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

void ExpectInvalid(const Result<Target>& r, const std::string& want) {
  ASSERT_FALSE(r.ok()) << "parsed as " << r->str() << "; expected an error containing: " << want;
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find(want), std::string::npos)
      << "message: " << r.error().message << "\nwanted:  " << want;
}

TEST(TargetKubernetes, Accepts) {
  struct Case {
    std::string in;
    Target::Kind kind;
    std::string value;
  };
  const Case cases[] = {
      {"pod-uid:" + kUid, Target::Kind::pod_uid, kUid},
      {"container:" + kId, Target::Kind::container, kId},
      {"container:" + kId.substr(0, 12), Target::Kind::container, kId.substr(0, 12)},
      {"container:" + kId.substr(0, 40), Target::Kind::container, kId.substr(0, 40)},
      {"pod:default/web-0", Target::Kind::pod, "default/web-0"},
      {"pod:kube-system/coredns-5d78c9869d-x7k2p", Target::Kind::pod, "kube-system/coredns-5d78c9869d-x7k2p"},
      {"pod:a/b.c.d", Target::Kind::pod, "a/b.c.d"},
      {"pod:" + std::string(63, 'n') + "/" + std::string(63, 'p') + "." + std::string(63, 'q') + "." +
           std::string(63, 'r') + "." + std::string(61, 's'),
       Target::Kind::pod,
       std::string(63, 'n') + "/" + std::string(63, 'p') + "." + std::string(63, 'q') + "." + std::string(63, 'r') +
           "." + std::string(61, 's')},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_target(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->kind, c.kind);
    EXPECT_EQ(r->value, c.value);
    EXPECT_EQ(r->str(), c.in);
    EXPECT_TRUE(r->kubernetes());
    auto back = parse_target(r->str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, *r);
  }
}

TEST(TargetKubernetes, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"pod-uid:", "invalid target \"pod-uid:\": missing pod UID after \"pod-uid:\""},
      {"pod-uid:0f1e2d3c_4b5a_6978_8695_a4b3c2d1e0f9", "write the UID with '-', not the '_' of systemd slice names"},
      {"pod-uid:0F1E2D3C-4B5A-6978-8695-A4B3C2D1E0F9",
       "invalid target \"pod-uid:0F1E2D3C-4B5A-6978-8695-A4B3C2D1E0F9\": the pod UID must be lower case"},
      {"pod-uid:0f1e2d3c4b5a69788695a4b3c2d1e0f9", "expected a pod UID such as 0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"},
      {"pod-uid:" + kUid + "0", "expected a pod UID such as"},
      {"pod-uid:" + kUid.substr(1), "expected a pod UID such as"},
      {"pod-uid:0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0fz", "expected a pod UID such as"},
      {"pod-uid:default/web", "expected a pod UID such as"},
      {"pod-uid:" + kUid + "\n", "leading or trailing whitespace"},
      {"container:", "invalid target \"container:\": missing container id after \"container:\""},
      {"container:abc", "a container id prefix needs at least 12 hex digits (got 3)"},
      {"container:" + kId.substr(0, 11), "needs at least 12 hex digits (got 11)"},
      {"container:" + kId + "0", "a container id has 64 hex digits (got 65)"},
      {"container:3B7E1F0C9A8D2E4F", "the container id must be lower case hex, as crictl prints it"},
      {"container:3b7e1f0c9a8d-2e4f", "character \"-\" at position 13 is not a hex digit"},
      {"container:containerd://" + kId, "drop the runtime prefix \"containerd://\" and give the hex id alone"},
      {"container:cri-o://" + kId, "drop the runtime prefix \"cri-o://\""},
      {"container:docker://" + kId, "drop the runtime prefix \"docker://\""},
      {"container:cri-containerd-" + kId, "character \"r\" at position 2 is not a hex digit"},
      {"pod:", "invalid target \"pod:\": expected pod:NAMESPACE/NAME"},
      {"pod:web", "expected pod:NAMESPACE/NAME"},
      {"pod:/web", "missing namespace before '/'"},
      {"pod:default/", "missing pod name after '/'"},
      {"pod:a/b/c", "expected pod:NAMESPACE/NAME with one '/'"},
      {"pod:Default/web", "namespace \"Default\": character \"D\" at position 1 is not allowed"},
      {"pod:-ns/web", "namespace \"-ns\": must start and end with a letter or digit"},
      {"pod:ns-/web", "must start and end with a letter or digit"},
      {"pod:my.ns/web", "namespace \"my.ns\": character \".\" at position 3 is not allowed"},
      {"pod:" + std::string(64, 'n') + "/web", "longer than 63 characters"},
      {"pod:default/Web", "pod name \"Web\": character \"W\" at position 1 is not allowed"},
      {"pod:default/web_0", "character \"_\" at position 4 is not allowed"},
      {"pod:default/web..0", "pod name \"web..0\": empty label between dots"},
      {"pod:default/.web", "empty label between dots"},
      {"pod:default/web.", "empty label between dots"},
      {"pod:default/web-", "each dot-separated part must start and end with a letter or digit"},
      {"pod:default/a.-b", "each dot-separated part must start and end with a letter or digit"},
      {"pod:default/" + std::string(254, 'p'), "pod name \"" + std::string(120, 'p')},
      {"pod:default/" + std::string(254, 'p'), "longer than 253 characters"},
      {"pod:default/we b", "character \" \" at position 3 is not allowed"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(quote(c.in));
    ExpectInvalid(parse_target(c.in), c.want);
  }
}

TEST(TargetLab, MapsToTheLabsNamespace) {
  struct Case {
    std::string in, netns;
  };
  const Case cases[] = {
      {"lab:a", "fl-lab-a"},
      {"lab:z", "fl-lab-z"},
      {"lab:demo/a", "demo-a"},
      {"lab:fl-lab/b", "fl-lab-b"},
      {"lab:" + std::string(40, 'l') + "/x", std::string(40, 'l') + "-x"},
      {"lab:lab-2/c", "lab-2-c"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_target(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->kind, Target::Kind::netns_name);
    EXPECT_EQ(r->value, c.netns);
    // The rest of the system sees a netns target, and that is what goes on the wire.
    EXPECT_EQ(r->str(), "netns:" + c.netns);
    EXPECT_FALSE(r->kubernetes());
    auto back = parse_target(r->str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, *r);
  }
  EXPECT_EQ(kDefaultLab, "fl-lab");
}

TEST(TargetLab, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"lab:", "invalid target \"lab:\": missing node name; expected lab:NODE or lab:LAB/NODE"},
      {"lab:demo/", "missing node name"},
      {"lab:/a", "missing lab name before '/'"},
      {"lab:node-1", "node name \"node-1\" is not a lab node (one letter, a to z)"},
      {"lab:hub", "node name \"hub\" is not a lab node"},
      {"lab:x-a/b-c", "node name \"b-c\" is not a lab node"},
      {"lab:" + std::string(41, 'l') + "/a", "lab name is longer than 40 characters"},
      {"lab:A", "node name \"A\" is not a lab node"},
      {"lab:a_b", "node name \"a_b\" is not a lab node"},
      {"lab:Demo/a", "lab name \"Demo\" may hold only a-z, 0-9 and '-'"},
      {"lab:demo.x/a", "lab name \"demo.x\" may hold only"},
      {"lab:a/b/c", "node name \"b/c\" is not a lab node"},
      {"lab:a b", "node name \"a b\" is not a lab node"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(quote(c.in));
    ExpectInvalid(parse_target(c.in), c.want);
  }
}

TEST(Target, UnknownKindListsEveryKind) {
  ExpectInvalid(parse_target("k8s:default/web"),
                "unknown kind \"k8s\"; expected host, netns:NAME, netns-path:/PATH, pid:PID, "
                "pod-uid:UID, container:ID, pod:NAMESPACE/NAME or lab:[LAB/]NODE");
  ExpectInvalid(parse_target("podname"), "expected host, netns:NAME");
}

// The daemon gets targets over the wire as str() and reads them back with parse_target.
TEST(Target, NewKindsSurviveTheProtocol) {
  FaultSpec s;
  s.kind = FaultKind::partition;
  s.targets = {Target{Target::Kind::pod_uid, kUid}, Target{Target::Kind::container, kId.substr(0, 12)},
               Target{Target::Kind::pod, "default/web-0"}, Target{Target::Kind::netns_name, "fl-lab-a"}};
  const nlohmann::json j = proto::fault_spec_to_json(s);
  EXPECT_EQ(j.at("targets"),
            (nlohmann::json{"pod-uid:" + kUid, "container:" + kId.substr(0, 12), "pod:default/web-0",
                            "netns:fl-lab-a"}));
  auto back = proto::fault_spec_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->targets, s.targets);
}

}  // namespace
}  // namespace fl::core
