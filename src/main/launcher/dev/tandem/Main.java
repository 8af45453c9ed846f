package dev.tandem;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;

/**
 * The application's entry point: checks the Java version, then starts Quarkus.
 *
 * <p>Why it exists: the application is compiled for Java 25, but Quarkus' own launcher
 * ({@code quarkus-run.jar}) is compiled for Java 17, so on a Java 17 to 24 runtime it gets as far
 * as loading the first application class, fails with UnsupportedClassVersionError before logging
 * is set up, and exits with status 1 and no message at all. This class is compiled for Java 17
 * (see the {@code launcher} execution of maven-compiler-plugin in pom.xml; it must not move to
 * src/main/java), so it runs there and can say what is wrong. Below Java 17 the JVM itself
 * reports Quarkus' launcher as too new.
 */
@QuarkusMain
public final class Main {
    /** The Java release the application is compiled for ({@code maven.compiler.release} in pom.xml). */
    static final int REQUIRED_JAVA = 25;

    private Main() {
    }

    public static void main(String... args) {
        String problem = tooOld(Runtime.version().feature(), System.getProperty("java.version"), System.getProperty("java.home"));
        if (problem != null) {
            System.err.println(problem);
            System.exit(1);
        }
        Quarkus.run(args);
    }

    /** Why a Java {@code feature} runtime cannot run the application, or null when it can. */
    static String tooOld(int feature, String version, String home) {
        if (feature >= REQUIRED_JAVA) {
            return null;
        }
        return "Tandem needs Java " + REQUIRED_JAVA + " or newer, but this is Java " + version + " (" + home + ")."
                + " Start it with the java of a JDK or JRE " + REQUIRED_JAVA + "+, e.g. /path/to/jdk-" + REQUIRED_JAVA
                + "/bin/java -jar quarkus-run.jar, or put that java first on PATH.";
    }
}
