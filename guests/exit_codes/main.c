/* exit_codes: exit through the finisher with a build-time code (-DEXIT_CODE=N), or with the code given by
   the first byte read from the UART (-DEXIT_FROM_UART: byte '0'..'9' -> 0..9, otherwise the byte itself). */
#include "guest.h"

int main(void)
{
#ifdef EXIT_FROM_UART
    puts_("exit_uart: waiting for a byte\n");
    int c = uart_getc();
    int code = (c >= '0' && c <= '9') ? c - '0' : c;
#else
    int code = EXIT_CODE;
#endif
    printf("exiting with code %d\n", code);
    exit(code);
}
