"""Runs the JVM and Go programs of the client tests (tests/java, tools/kafka.sh, tests/go), which
scripts/install-test-tools.sh builds and caches, and reads the JSON report a scenario program prints last."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JAVA_TARGET = ROOT / "tests" / "java" / "target"
SCENARIOS_JAR = JAVA_TARGET / "sluice-java-scenarios-1.jar"
FRANZGO = ROOT / "tests" / "go" / "franzgo"
KAFKA_SH = ROOT / "tools" / "kafka.sh"
INSTALL_HINT = "run scripts/install-test-tools.sh, which builds it"
# Short-lived JVMs start faster with the C1 compiler only and the serial collector: about 1 s for a tool run
# instead of 1.5 s. Kafka's own scripts take the same variable.
FAST_START = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def report_of(result, what):
    assert result.returncode == 0, f"{what} exited with {result.returncode}:\n{result.stderr[-6000:]}"
    lines = result.stdout.strip().splitlines()
    assert lines, f"{what} printed nothing:\n{result.stderr[-6000:]}"
    return json.loads(lines[-1])


def java_main(main_class, *args, timeout=180, jvm_opts=FAST_START):
    """Runs MAIN_CLASS ARGS... from tests/java's jar and returns the report it prints last."""
    assert SCENARIOS_JAR.exists(), f"{SCENARIOS_JAR} is missing: {INSTALL_HINT}"
    result = subprocess.run(
        ["java", "-Xmx512m", *jvm_opts.split(), "-cp", f"{SCENARIOS_JAR}:{JAVA_TARGET / 'libs'}/*", main_class,
         *args],
        capture_output=True, text=True, timeout=timeout)
    return report_of(result, f"{main_class} {' '.join(args)}")


def java_scenario(name, bootstrap, timeout=180):
    """Runs sluice.Scenarios NAME BOOTSTRAP (tests/java) and returns its report."""
    return java_main("sluice.Scenarios", name, bootstrap, timeout=timeout)


def franzgo(bootstrap, timeout=180):
    assert FRANZGO.exists(), f"{FRANZGO} is missing: {INSTALL_HINT}"
    result = subprocess.run([str(FRANZGO), bootstrap], capture_output=True, text=True, timeout=timeout)
    return report_of(result, "franzgo")


def kafka_tool(tool, *args, input=None, check=True, timeout=120):
    """Runs one of Kafka's command-line tools through tools/kafka.sh; returns the completed process."""
    env = {**os.environ, "KAFKA_JVM_PERFORMANCE_OPTS": FAST_START}
    result = subprocess.run([str(KAFKA_SH), tool, *args], input=input, capture_output=True, text=True, env=env,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, (
            f"{tool} {' '.join(args)} exited with {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result
