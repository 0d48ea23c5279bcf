import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;

// Alloc is the JVM the tests read: it runs the commands of its stdin, one
// a line, and answers each with "ok" once done:
//
//	alloc MB   allocate MB megabytes of short-lived arrays (young GCs)
//	keep MB    allocate MB megabytes that stay live
//	gc N       call System.gc() N times (full GCs)
//	exit       exit normally (the JVM deletes its hsperfdata file)
public class Alloc {
    static volatile Object sink;

    public static void main(String[] args) throws Exception {
        List<byte[]> kept = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("ok");
        System.out.flush();
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split(" ");
            int n = f.length > 1 ? Integer.parseInt(f[1]) : 0;
            switch (f[0]) {
                case "alloc":
                    for (int i = 0; i < n * 64; i++) {
                        sink = new byte[16 * 1024];
                    }
                    break;
                case "keep":
                    for (int i = 0; i < n; i++) {
                        kept.add(new byte[1024 * 1024]);
                    }
                    break;
                case "gc":
                    for (int i = 0; i < n; i++) {
                        System.gc();
                    }
                    break;
                case "exit":
                    System.exit(0);
                default:
                    System.out.println("unknown command " + f[0]);
            }
            System.out.println("ok");
            System.out.flush();
        }
    }
}
