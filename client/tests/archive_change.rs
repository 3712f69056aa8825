//! `--change` instructions: what each one does to the config, and Docker's refusals.

use berth_client::archive::change::{apply, ContainerConfig};
use rstest::rstest;
use serde_json::{json, Value};

fn config(changes: &[&str]) -> Value {
    let mut c = ContainerConfig::default();
    apply(
        &mut c,
        &changes.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
    )
    .unwrap_or_else(|e| panic!("{changes:?}: {e}"));
    serde_json::to_value(c).unwrap()
}

#[rstest]
#[case(&["CMD [\"/bin/sh\", \"-c\", \"echo hi\"]"], json!({"Cmd": ["/bin/sh", "-c", "echo hi"]}))]
#[case(&["CMD echo \"hi there\""], json!({"Cmd": ["/bin/sh", "-c", "echo \"hi there\""]}))]
#[case(&["cmd []"], json!({"Cmd": []}))]
#[case(&["ENTRYPOINT [\"/bin/busybox\"]"], json!({"Entrypoint": ["/bin/busybox"]}))]
#[case(&["ENTRYPOINT exec top -b"], json!({"Entrypoint": ["/bin/sh", "-c", "exec top -b"]}))]
#[case(&["CMD [\"x\"]", "ENTRYPOINT [\"e\"]"], json!({"Cmd": ["x"], "Entrypoint": ["e"]}))]
#[case(&["ENV DEBUG=true"], json!({"Env": ["DEBUG=true"]}))]
#[case(&["ENV A=1 B=\"two words\" C=three\\ words"], json!({"Env": ["A=1", "B=two words", "C=three words"]}))]
#[case(&["ENV GREETING hello world"], json!({"Env": ["GREETING=hello world"]}))]
#[case(&["ENV A=1", "ENV A=2"], json!({"Env": ["A=2"]}))]
#[case(&["ENV A='single $quoted'"], json!({"Env": ["A=single $quoted"]}))]
#[case(&["WORKDIR /app"], json!({"WorkingDir": "/app"}))]
#[case(&["WORKDIR /app", "WORKDIR sub/../src"], json!({"WorkingDir": "/app/src"}))]
#[case(&["WORKDIR rel"], json!({"WorkingDir": "/rel"}))]
#[case(&["USER 1000:1000"], json!({"User": "1000:1000"}))]
#[case(&["EXPOSE 80 53/udp"], json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}))]
#[case(&["EXPOSE 8000-8002/tcp"], json!({"ExposedPorts": {"8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}}))]
#[case(&["LABEL a=b \"c d\"=e"], json!({"Labels": {"a": "b", "c d": "e"}}))]
#[case(&["LABEL LABEL1=hello", "LABEL LABEL2=world"], json!({"Labels": {"LABEL1": "hello", "LABEL2": "world"}}))]
#[case(&["VOLUME /data /cache"], json!({"Volumes": {"/data": {}, "/cache": {}}}))]
#[case(&["VOLUME [\"/data\"]"], json!({"Volumes": {"/data": {}}}))]
#[case(&["STOPSIGNAL SIGINT"], json!({"StopSignal": "SIGINT"}))]
#[case(&["STOPSIGNAL 9"], json!({"StopSignal": "9"}))]
#[case(&["ONBUILD RUN make"], json!({"OnBuild": ["RUN make"]}))]
#[case(&["HEALTHCHECK NONE"], json!({"Healthcheck": {"Test": ["NONE"]}}))]
#[case(
    &["HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/"],
    json!({"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 30_000_000_000u64, "Retries": 3}})
)]
#[case(&["HEALTHCHECK CMD [\"/check\", \"-q\"]"], json!({"Healthcheck": {"Test": ["CMD", "/check", "-q"]}}))]
#[case(&[""], json!({}))]
fn applies(#[case] changes: &[&str], #[case] want: Value) {
    assert_eq!(config(changes), want);
}

#[rstest]
#[case("RUN echo hi", "run is not a valid change command")]
#[case("COPY a b", "copy is not a valid change command")]
#[case("FROM busybox", "from is not a valid change command")]
#[case("ADD x /", "add is not a valid change command")]
#[case("WORKDIR", "WORKDIR requires exactly one argument")]
#[case("USER a b", "USER requires exactly one argument")]
#[case("ENV", "ENV requires at least one argument")]
#[case("ENV LONELY", "ENV must have two arguments")]
#[case(
    "ENV A=1 B",
    "Syntax error - can't find = in \"B\". Must be of the form: name=value"
)]
#[case("ENV =x", "ENV names can not be blank")]
#[case("LABEL", "LABEL requires at least one argument")]
#[case("EXPOSE", "EXPOSE requires at least one argument")]
#[case("EXPOSE 99999", "invalid containerPort: 99999")]
#[case("EXPOSE 80/foo", "invalid proto: foo")]
#[case("STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE")]
#[case(
    "ONBUILD ONBUILD RUN x",
    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
)]
#[case("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger")]
#[case("VOLUME [\"\"]", "VOLUME specified can not be an empty string")]
#[case("ENV A=\"open", "unmatched quote in `A=\"open`")]
#[case("HEALTHCHECK --interval=5 CMD x", "HEALTHCHECK: invalid duration `5`")]
fn refuses(#[case] change: &str, #[case] message: &str) {
    let err = apply(&mut ContainerConfig::default(), &[change.to_owned()]).unwrap_err();
    assert_eq!(err.to_string(), message);
}
