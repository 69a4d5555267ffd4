/* main.c - placeholder until the daemon entry lands. */
int main(void)
{
    return 1;
}
